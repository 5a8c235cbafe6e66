package fs

import (
	"context"
	"io"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/s3drive/s3drive/cache"
)

const (
	// fetchUnit is the grain of a download into the data cache: a read
	// fetches the units it touches and no more (a file manager sniffing a
	// type reads a few KiB), and each unit fetched stays for the next
	// reader.
	fetchUnit = 1 << 20
	// fetchRun is the most units one ranged GET covers: sequential readers
	// fetch in runs this long (the raw client's part size), as before.
	fetchRun = 16
	// maxFetchAhead bounds the runs fetched ahead of a sequential reader,
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
	n := int((size + fetchUnit - 1) / fetchUnit)
	ctx, cancel := context.WithCancel(context.Background())
	fe := &fetcher{fsys: f, key: key, etag: etag, size: size, fill: fill, ctx: ctx, cancel: cancel,
		ready: make([]chan struct{}, n), started: make([]bool, n), remaining: n}
	for i := range fe.ready {
		fe.ready[i] = make(chan struct{})
	}
	return fe, nil
}

// read fills dest from off, fetching the units it spans and, for a
// sequential reader, ahead runs beyond them: ahead (0 to maxFetchAhead)
// grows while the reads stay sequential.
func (fe *fetcher) read(ctx context.Context, dest []byte, off int64, ahead int) (int, error) {
	if off >= fe.size {
		return 0, nil
	}
	end := min(off+int64(len(dest)), fe.size)
	first, last := int(off/fetchUnit), int((end-1)/fetchUnit)
	from, target := first, last
	if ahead > 0 {
		// Whole run-aligned blocks, from the one the read is in to the one
		// ahead*fetchRun units on: as the reader moves, each new block
		// goes in one GET, never a unit at a time at the window's edge,
		// and reads the kernel's read-ahead sends out of order find their
		// units already on the way.
		from = first - first%fetchRun
		target = ((last+ahead*fetchRun)/fetchRun+1)*fetchRun - 1
	}
	fe.startRuns(from, min(target, len(fe.ready)-1))
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

// startRuns starts GETs for the units from first to last not started
// yet, consecutive ones together, up to fetchRun in one.
func (fe *fetcher) startRuns(first, last int) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	for c := first; c <= last; {
		if fe.started[c] {
			c++
			continue
		}
		n := 0 // up to the next run boundary
		for c+n <= last && !fe.started[c+n] && (n == 0 || (c+n)%fetchRun != 0) {
			fe.started[c+n] = true
			n++
		}
		go fe.fetch(c, n)
		c += n
	}
}

// fetch downloads n units from unit c into the cache file with one ranged
// GET, marking each unit ready as its bytes are in.
func (fe *fetcher) fetch(c, n int) {
	off := int64(c) * fetchUnit
	length := min(int64(n)*fetchUnit, fe.size-off)
	done := c // the next unit to mark ready
	rc, err := fe.fsys.be.Get(fe.ctx, fe.key, off, length, fe.etag)
	if err == nil {
		fe.fill.Reserve(off, length)
		// Large writes: the cache file's page allocation costs per call.
		buf := make([]byte, fetchUnit)
		w := io.NewOffsetWriter(fe.fill.File, off)
		var got int64
		for got < length && err == nil {
			var k int
			k, err = io.ReadFull(rc, buf[:min(int64(len(buf)), length-got)])
			if k > 0 {
				if _, werr := w.Write(buf[:k]); werr != nil {
					err = werr
				}
				got += int64(k)
			}
			if err == nil {
				done = fe.unitsIn(c, n, got, done)
			}
		}
		rc.Close()
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil {
		fe.failUnits(done, c+n, err)
	}
}

// unitsIn marks ready the units from done whose bytes are all among the
// got bytes written from unit c, and returns the next unit to mark.
func (fe *fetcher) unitsIn(c, n int, got int64, done int) int {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	base := int64(c) * fetchUnit
	for done < c+n {
		unitEnd := min(int64(done+1)*fetchUnit, fe.size)
		if base+got < unitEnd {
			break
		}
		close(fe.ready[done])
		fe.remaining--
		done++
	}
	if fe.remaining == 0 && fe.failed == nil && !fe.committed {
		if cerr := fe.fsys.data.Commit(fe.fill); cerr != nil {
			fe.fsys.log.Warn("could not keep a download in the data cache", "key", fe.key, "err", cerr)
		} else {
			fe.committed = true
		}
	}
	return done
}

// failUnits ends the units from done to end with err: every waiter learns
// of the failure, and the fetcher is done for.
func (fe *fetcher) failUnits(done, end int, err error) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if fe.failed == nil {
		fe.failed = err
	}
	for i := done; i < end; i++ {
		close(fe.ready[i])
	}
	for i, started := range fe.started {
		if !started {
			fe.started[i] = true
			close(fe.ready[i])
		}
	}
}

// isCommitted reports whether the whole object is in the data cache.
func (fe *fetcher) isCommitted() bool {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	return fe.committed
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

// Partial downloads outlive their readers: a file manager sniffing a
// file's type reads its first KiB on every view, and a file read half way
// is often read again. The fetcher of a file nobody reads any more is kept
// (parked) with the units it fetched, up to maxParked files, least
// recently used first to go; one whose object changed, or whose inode the
// kernel forgets, goes at once.

// maxParked bounds the partial downloads kept without a reader.
const maxParked = 32

type parkedFetchers struct {
	lru *lru.Cache[*fetcher, *File]
}

func newParkedFetchers() parkedFetchers {
	// Called when one is pushed out, and on Remove.
	c, _ := lru.NewWithEvict(maxParked, func(fe *fetcher, file *File) {
		go file.dropParked(fe) // not under the LRU's lock: file.mu may be held by a caller of it
	})
	return parkedFetchers{lru: c}
}

// dropParked ends fe if it is still the file's fetcher and nobody reads
// through it.
func (f *File) dropParked(fe *fetcher) {
	f.mu.Lock()
	idle := fe.refs == 0
	if idle && f.fetch == fe {
		f.fetch = nil
	}
	f.mu.Unlock()
	if idle {
		fe.finish()
	}
}
