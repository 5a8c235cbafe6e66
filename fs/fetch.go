package fs

import (
	"context"
	"io"
	"sync"

	"github.com/s3drive/s3drive/cache"
)

const (
	// fetchChunk is the unit of a download into the data cache: one ranged
	// GET (the raw client's part size).
	fetchChunk = 16 << 20
	// maxFetchAhead bounds the chunks fetched ahead of a sequential reader,
	// and so the GETs in flight per file.
	maxFetchAhead = 8
	// nearby is how far a read may land from the previous one's end and
	// still count as sequential: the kernel's read-ahead sends several
	// reads at once, which arrive out of order.
	nearby = 4 << 20
)

// fetcher downloads one object version into a data-cache entry with
// parallel ranged GETs, chunk by chunk as readers need them, and commits
// the entry once every chunk is in. All handles of an inode share it. Its
// bytes live in the cache file (the page cache and the disk), never in
// the daemon's memory.
type fetcher struct {
	fsys      *FS
	key, etag string
	size      int64
	fill      *cache.Fill
	ctx       context.Context
	cancel    context.CancelFunc

	mu        sync.Mutex // protects the following
	ready     []chan struct{}
	started   []bool
	failed    error
	remaining int
	committed bool
	refs      int // handles reading through it; changed under the File's mu
}

func (f *FS) newFetcher(key, etag string, size int64) (*fetcher, error) {
	fill, err := f.data.Begin(key, etag, size)
	if err != nil {
		return nil, err
	}
	n := int((size + fetchChunk - 1) / fetchChunk)
	ctx, cancel := context.WithCancel(context.Background())
	fe := &fetcher{fsys: f, key: key, etag: etag, size: size, fill: fill, ctx: ctx, cancel: cancel,
		ready: make([]chan struct{}, n), started: make([]bool, n), remaining: n}
	for i := range fe.ready {
		fe.ready[i] = make(chan struct{})
	}
	return fe, nil
}

// read fills dest from off, fetching the chunks it spans and ahead more
// chunks beyond them.
func (fe *fetcher) read(ctx context.Context, dest []byte, off int64, ahead int) (int, error) {
	if off >= fe.size {
		return 0, nil
	}
	end := min(off+int64(len(dest)), fe.size)
	first, last := int(off/fetchChunk), int((end-1)/fetchChunk)
	fe.mu.Lock()
	for c := first; c <= last+ahead && c < len(fe.ready); c++ {
		if !fe.started[c] {
			fe.started[c] = true
			go fe.fetch(c)
		}
	}
	fe.mu.Unlock()
	for c := first; c <= last; c++ {
		select {
		case <-fe.ready[c]:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	fe.mu.Lock()
	err := fe.failed
	fe.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := fe.fill.File.ReadAt(dest[:end-off], off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// fetch downloads chunk c into the cache file.
func (fe *fetcher) fetch(c int) {
	off := int64(c) * fetchChunk
	n := min(fetchChunk, fe.size-off)
	rc, err := fe.fsys.be.Get(fe.ctx, fe.key, off, n, fe.etag)
	if err == nil {
		fe.fill.Reserve(off, n)
		var got int64
		// Large writes: the cache file's page allocation costs per call.
		got, err = io.CopyBuffer(io.NewOffsetWriter(fe.fill.File, off), struct{ io.Reader }{rc}, make([]byte, 1<<20))
		rc.Close()
		if err == nil && got != n {
			err = io.ErrUnexpectedEOF
		}
	}
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if err != nil && fe.failed == nil {
		fe.failed = err
	}
	if err == nil {
		fe.remaining--
	}
	close(fe.ready[c])
	if err != nil {
		// Every waiter learns of the failure; the fetcher is done for.
		for i, started := range fe.started {
			if !started {
				fe.started[i] = true
				close(fe.ready[i])
			}
		}
		return
	}
	if fe.remaining == 0 && fe.failed == nil {
		if cerr := fe.fsys.data.Commit(fe.fill); cerr != nil {
			fe.fsys.log.Warn("could not keep a download in the data cache", "key", fe.key, "err", cerr)
		} else {
			fe.committed = true
		}
	}
}

// broken reports whether a chunk failed: the next reader starts afresh.
func (fe *fetcher) broken() bool {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	return fe.failed != nil
}

// finish ends a fetcher nobody reads any more: it closes the file and, if
// the download was not complete, cancels it and discards the partial entry.
func (fe *fetcher) finish() {
	fe.cancel()
	fe.mu.Lock()
	committed := fe.committed
	fe.mu.Unlock()
	if committed {
		fe.fill.File.Close()
		return
	}
	go func() {
		for i := range fe.ready {
			fe.mu.Lock()
			started := fe.started[i]
			fe.mu.Unlock()
			if started {
				<-fe.ready[i] // the cancelled GET ends
			}
		}
		fe.fsys.data.Abort(fe.fill)
	}()
}
