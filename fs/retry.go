package fs

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// retries uploads, in the background, files whose upload failed, until
// S3 takes them: a program told EIO at close must not have to wait for
// unmount for its data to arrive once the server is back.
type retries struct {
	mu      sync.Mutex // protects the following
	due     map[*File]*retryState
	running bool
	// failures counts failed attempts, for the metrics.
	failures atomic.Int64
}

type retryState struct {
	next    time.Time
	delay   time.Duration
	tries   int
	lastErr error
}

const (
	firstRetry = time.Second
	// maxRetryDelay keeps the wait after an outage ends short: a file is
	// tried at least this often.
	maxRetryDelay = 8 * time.Second
)

// uploadFailed schedules file's next upload attempt, backing off, and
// returns how many attempts in a row failed.
func (f *FS) uploadFailed(file *File, err error) int {
	r := &f.retries
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.due == nil {
		r.due = map[*File]*retryState{}
	}
	st := r.due[file]
	if st == nil {
		st = &retryState{delay: firstRetry}
		r.due[file] = st
	} else {
		st.delay = min(st.delay*2, maxRetryDelay)
	}
	st.next = time.Now().Add(st.delay)
	st.tries++
	r.failures.Add(1)
	st.lastErr = err
	if !r.running {
		r.running = true
		go f.retryLoop()
	}
	return st.tries
}

// retryOf is file's retry state, if its upload failed.
func (f *FS) retryOf(file *File) (retryState, bool) {
	r := &f.retries
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.due[file]
	if !ok {
		return retryState{}, false
	}
	return *st, true
}

// postpone moves file's next attempt back without counting a failure.
func (f *FS) postpone(file *File) {
	r := &f.retries
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.due[file]; st != nil {
		st.next = time.Now().Add(st.delay)
	}
}

// uploaded takes file off the retry list.
func (f *FS) uploaded(file *File) {
	r := &f.retries
	r.mu.Lock()
	delete(r.due, file)
	r.mu.Unlock()
}

func (f *FS) retryLoop() {
	r := &f.retries
	wasOffline := false
	for {
		offline := f.be.Offline()
		r.mu.Lock()
		if len(r.due) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		now := time.Now()
		if wasOffline && !offline {
			// The server answers again: everything goes now, not at
			// the end of each file's backoff.
			for _, st := range r.due {
				st.next, st.delay = now, firstRetry
			}
		}
		wasOffline = offline
		// Woken at least every second to notice the server return.
		wait := firstRetry
		var due []*File
		for file, st := range r.due {
			if d := st.next.Sub(now); d <= 0 {
				due = append(due, file)
			} else {
				wait = min(wait, d)
			}
		}
		r.mu.Unlock()
		for _, file := range due {
			if offline {
				f.postpone(file) // nothing would get through
				continue
			}
			errno, tried := file.uploadClosed(context.Background())
			switch {
			case !tried:
				f.postpone(file) // a writer has it open, and its close uploads
			case errno == 0:
				f.uploaded(file) // also when there was nothing left to send
			}
		}
		if len(due) == 0 {
			time.Sleep(wait)
		}
	}
}
