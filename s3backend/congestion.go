package s3backend

import (
	"context"
	"sync"
	"time"
)

// congestion limits the requests in flight to what the server accepts, as
// TCP does: the limit halves when the server answers 503 (SlowDown) or 429,
// at most once per cutEvery so that one burst of refusals counts once, and
// grows by one for every limit's worth of requests that went through.
// Throttling thus slows the mount down instead of failing its calls.
type congestion struct {
	max float64

	mu       sync.Mutex // protects the following
	limit    float64
	inFlight int
	lastCut  time.Time
	wake     chan struct{} // closed when a slot frees
}

const (
	minInFlight = 2
	cutEvery    = 200 * time.Millisecond
)

func newCongestion(maxInFlight int) *congestion {
	return &congestion{max: float64(maxInFlight), limit: float64(maxInFlight), wake: make(chan struct{})}
}

func (c *congestion) acquire(ctx context.Context) error {
	for {
		c.mu.Lock()
		if c.inFlight < int(c.limit) {
			c.inFlight++
			c.mu.Unlock()
			return nil
		}
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// release ends a request; throttled says the server asked to slow down.
func (c *congestion) release(throttled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight--
	switch {
	case throttled && time.Since(c.lastCut) >= cutEvery:
		c.limit = max(c.limit/2, minInFlight)
		c.lastCut = time.Now()
	case !throttled && c.limit < c.max:
		c.limit = min(c.limit+1/c.limit, c.max)
	}
	close(c.wake)
	c.wake = make(chan struct{})
}

// current is the limit in force (for status and tests).
func (c *congestion) current() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.limit)
}
