package s3backend

import (
	"context"
	"errors"
	"log/slog"
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
	mu   sync.Mutex // protects since
	// since is when the outage began.
	since time.Time
}

const probeEvery = 2 * time.Second

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
	if h.down.Load() || !h.down.CompareAndSwap(false, true) {
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
		ctx, cancel := context.WithTimeout(context.Background(), probeEvery*2)
		_ = h.probe(ctx)
		cancel()
	}
}

// noResponse reports whether a round trip's error means the server gave no
// answer, as opposed to the caller giving up.
func noResponse(ctx context.Context, err error) bool {
	if err == nil {
		return false
	}
	if timedOut(ctx) {
		return true
	}
	return ctx.Err() == nil && !errors.Is(err, context.Canceled)
}
