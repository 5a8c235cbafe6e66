package s3backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// ErrTimeout means the server stopped answering: nothing moved — no
// response, no byte of a body either way — for the configured timeout.
var ErrTimeout = errors.New("no answer from the server in time")

// DefaultTimeout bounds how long an operation may go without progress.
const DefaultTimeout = 20 * time.Second

// downTimeout is the watchdog while the server is known not to answer.
const downTimeout = 3 * time.Second

type watchdogKey struct{}

// watchdog cancels an operation once nothing has moved for idle. The
// deadline slides with progress rather than being fixed: a 5 GiB upload
// on a slow link may take an hour, and a silent server must still fail
// in idle. The transport reports progress (response headers, body bytes
// either way) to the watchdog found in the request's context, which
// passes it on to the operation that contains it (an Upload's parts).
type watchdog struct {
	idle   time.Duration
	last   atomic.Int64 // unix nanoseconds of the last progress
	cancel context.CancelCauseFunc
	timer  *time.Timer
	parent *watchdog
}

// bound returns ctx limited by a watchdog of b's timeout plus extra (for
// requests the server may work on silently, such as a large copy), and
// the function that ends it. While the server is known not to answer, the
// watchdog is short: a close then fails in seconds, not in another full
// timeout, and its data waits for the background retry.
func (b *S3) bound(ctx context.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	idle := b.cfg.Timeout + extra
	if b.Offline() {
		idle = min(idle, downTimeout)
	}
	w := &watchdog{idle: idle, cancel: cancel}
	w.parent, _ = ctx.Value(watchdogKey{}).(*watchdog)
	w.last.Store(time.Now().UnixNano())
	w.timer = time.AfterFunc(w.idle, w.check)
	ctx = context.WithValue(ctx, watchdogKey{}, w)
	return ctx, func() {
		w.timer.Stop()
		cancel(context.Canceled)
	}
}

func (w *watchdog) touch() {
	now := time.Now().UnixNano()
	for ; w != nil; w = w.parent {
		w.last.Store(now)
	}
}

func (w *watchdog) check() {
	quiet := time.Since(time.Unix(0, w.last.Load()))
	if quiet >= w.idle {
		w.cancel(fmt.Errorf("%w (nothing moved for %s)", ErrTimeout, w.idle))
		return
	}
	w.timer.Reset(w.idle - quiet)
}

// touchFrom reports progress to the operation ctx belongs to, if any.
func touchFrom(ctx context.Context) *watchdog {
	w, _ := ctx.Value(watchdogKey{}).(*watchdog)
	return w
}

// timedOut reports whether ctx was ended by its watchdog.
func timedOut(ctx context.Context) bool { return errors.Is(context.Cause(ctx), ErrTimeout) }

// progressReader reports every read to a watchdog.
type progressReader struct {
	io.ReadCloser
	w *watchdog
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.ReadCloser.Read(b)
	if n > 0 {
		p.w.touch()
	}
	return n, err
}
