package fs

import (
	"context"
	"io"
	"sync"

	"github.com/s3drive/s3drive/s3backend"
)

const (
	minReadAhead = 1 << 20
	maxReadAhead = 16 << 20
)

// readAhead serves one handle's reads of an S3 object. Sequential reads
// fetch a window that doubles (1 MiB up to 16 MiB) while they stay
// sequential; a seek falls back to the minimum. Memory is bounded by one
// window per open handle.
type readAhead struct {
	mu      sync.Mutex // protects the following
	buf     []byte
	bufOff  int64
	window  int64
	lastEnd int64
}

func (r *readAhead) read(ctx context.Context, be s3backend.Backend, key, etag string, size int64, dest []byte, off int64) (int, error) {
	if off >= size {
		return 0, nil
	}
	end := min(off+int64(len(dest)), size)
	r.mu.Lock()
	defer r.mu.Unlock()
	if off >= r.bufOff && end <= r.bufOff+int64(len(r.buf)) {
		r.lastEnd = end
		return copy(dest, r.buf[off-r.bufOff:]), nil
	}
	sequential := r.window > 0 && (off == r.lastEnd || (off >= r.bufOff && off <= r.bufOff+int64(len(r.buf))))
	if sequential {
		r.window = min(r.window*2, maxReadAhead)
	} else {
		r.window = minReadAhead
	}
	n := min(max(r.window, end-off), size-off)
	rc, err := be.Get(ctx, key, off, n, etag)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if int64(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	got, err := io.ReadFull(rc, r.buf)
	r.buf = r.buf[:got]
	r.bufOff = off
	if err != nil && err != io.ErrUnexpectedEOF {
		r.buf = r.buf[:0]
		return 0, err
	}
	r.lastEnd = end
	return copy(dest, r.buf), nil
}
