package s3backend

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// health tracks whether the endpoint answers at all. A request that got
// no response (refused, reset, silent) marks it down; any response, an
// error status included, marks it up. While it is down a probe asks every
// probeEvery, so that it comes back up without waiting for a user's
// request, and the filesystem can serve what it holds meanwhile.
type health struct {
	log   *slog.Logger
	probe func(ctx context.Context) error

	down atomic.Bool
	// checking: the mount-time check is running, and reports for itself.
	checking atomic.Bool
	mu       sync.Mutex // protects since
	// since is when the outage began.
	since time.Time
}

const probeEvery = time.Second

func (h *health) answered() {
	if !h.down.Load() || !h.down.CompareAndSwap(true, false) {
		return
	}
	h.mu.Lock()
	lasted := time.Since(h.since).Round(time.Second)
	h.mu.Unlock()
	h.log.Info("S3 endpoint answers again", "outage", lasted)
}

func (h *health) failed(err error) {
	if h.checking.Load() || h.down.Load() || !h.down.CompareAndSwap(false, true) {
		return
	}
	h.mu.Lock()
	h.since = time.Now()
	h.mu.Unlock()
	h.log.Warn("S3 endpoint not answering: serving the listings and files this mount holds until it does", "err", err)
	go h.probeUntilUp()
}

func (h *health) probeUntilUp() {
	for h.down.Load() {
		time.Sleep(probeEvery)
		ctx, cancel := context.WithTimeout(context.Background(), downTimeout)
		_ = h.probe(ctx)
		cancel()
	}
}

// noResponse reports whether a round trip's error means the server is
// not answering: the connection was refused or timed out, or the request
// went unanswered past its timeout. A reset is not: networks drop single
// connections, and the retry usually gets through. Neither is the caller
// giving up.
func noResponse(ctx context.Context, err error) bool {
	switch {
	case err == nil:
		return false
	case timedOut(ctx):
		return true
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var timeout interface{ Timeout() bool }
	return errors.As(err, &timeout) && timeout.Timeout()
}
