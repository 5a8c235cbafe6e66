package fs

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/s3drive/s3drive/cache"
)

// handle is one open file description.
type handle struct {
	file *File
	ra   readAhead // reads without the data cache

	mu         sync.Mutex // protects the following
	cached     *os.File   // the whole content, from the data cache
	cachedETag string
	fetch      *fetcher // the download this handle reads through
	lastEnd    int64    // where the previous read ended
	ahead      int      // chunks to fetch ahead: grows while reads are sequential

	passthrough bool        // the kernel reads this one directly
	closing     atomic.Bool // the first Flush came: the descriptor is closing
	// wrote: data was written or the size set through this handle, so
	// its close must upload. owner is the process that opened it for
	// writing (0: unknown).
	wrote    atomic.Bool
	owner    int
	writable bool
}

// passthroughHandle reads a file whole in the data cache. Only read-only
// opens get one: the kernel sends a passthrough file's writes to the
// backing file too, and go-fuse shares one backing file per inode.
type passthroughHandle struct{ *handle }

var _ = (fs.FilePassthroughFder)((*passthroughHandle)(nil))

func (p *passthroughHandle) PassthroughFd() (int, bool) { return int(p.cached.Fd()), true }

// Flush has nothing to upload: the file was opened read-only.
func (p *passthroughHandle) Flush(ctx context.Context) syscall.Errno {
	p.closed()
	return 0
}

var (
	_ = (fs.FileReader)((*handle)(nil))
	_ = (fs.FileWriter)((*handle)(nil))
	_ = (fs.FileFlusher)((*handle)(nil))
	_ = (fs.FileFsyncer)((*handle)(nil))
	_ = (fs.FileReleaser)((*handle)(nil))
)

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f := h.file
	f.mu.Lock()
	if f.stage != nil && off < f.released {
		f.mu.Unlock()
		return nil, syscall.EIO // see releaseSentLocked
	}
	if f.stage != nil {
		n, err := f.stage.ReadAt(dest, off)
		f.mu.Unlock()
		if err != nil && err != io.EOF {
			return nil, toErrno(f.fsys.log, "read staging", f.stage.Name(), err)
		}
		return fuse.ReadResultData(dest[:n]), 0
	}
	m := f.meta
	f.mu.Unlock()
	key, _ := f.key()
	var n int
	var err error
	if f.fsys.data != nil && m.Size <= f.fsys.data.Limit() {
		n, err = h.readCached(ctx, key, m, dest, off)
		if errors.Is(err, cache.ErrNoRoom) || errors.Is(err, syscall.ENOSPC) {
			// The cache disk is full (of staged writes): read around it.
			n, err = h.ra.read(ctx, f.fsys.be, key, m.ETag, m.Size, dest, off)
		}
	} else {
		n, err = h.ra.read(ctx, f.fsys.be, key, m.ETag, m.Size, dest, off)
	}
	if err != nil {
		return nil, toErrno(f.fsys.log, "read", key, err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// readCached reads through the data cache: from the cached file when it
// holds this version, else through the inode's download, fetching further
// ahead while the reads stay sequential.
func (h *handle) readCached(ctx context.Context, key string, m cache.Meta, dest []byte, off int64) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cached != nil && h.cachedETag == m.ETag {
		return h.readCachedFileLocked(dest, off, m.Size)
	}
	if h.fetch == nil || h.fetch.etag != m.ETag {
		h.dropReadersLocked()
		if c, ok := h.file.fsys.data.Open(key, m.ETag); ok {
			h.cached, h.cachedETag = c, m.ETag
			return h.readCachedFileLocked(dest, off, m.Size)
		}
		fe, err := h.file.fetcherFor(key, m)
		if err != nil {
			return 0, err
		}
		h.fetch = fe
	}
	if off >= h.lastEnd-nearby && off <= h.lastEnd+nearby && h.lastEnd > 0 {
		h.ahead = min(h.ahead+1, maxFetchAhead)
	} else {
		h.ahead = 0
	}
	h.lastEnd = off + int64(len(dest))
	n, err := h.fetch.read(ctx, dest, off, h.ahead)
	if err != nil && h.fetch.broken() {
		// The next read starts a fresh download.
		h.file.releaseFetcher(h.fetch)
		h.fetch = nil
	}
	return n, err
}

func (h *handle) readCachedFileLocked(dest []byte, off, size int64) (int, error) {
	n, err := h.cached.ReadAt(dest[:min(int64(len(dest)), max(size-off, 0))], off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// dropReadersLocked lets go of the cached file and the download.
func (h *handle) dropReadersLocked() {
	if h.cached != nil {
		h.cached.Close()
		h.cached = nil
	}
	if h.fetch != nil {
		h.file.releaseFetcher(h.fetch)
		h.fetch = nil
	}
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	f := h.file
	f.ioMu.Lock()
	defer f.ioMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	key, _ := f.key()
	if err := f.ensureStagedLocked(ctx, key, f.meta.Size); err != nil {
		return 0, toErrno(f.fsys.log, "stage for write", key, err)
	}
	if off < f.released || (f.released > 0 && f.stream != nil && off < f.stream.sent) {
		f.fsys.log.Error("write below what was released to make room on the cache disk", "key", key)
		return 0, syscall.EIO
	}
	n, err := f.writeStageLocked(data, off)
	if end := off + int64(n); end > f.stageSize {
		f.stageSize = end
	}
	if n > 0 {
		f.setDirtyLocked()
		h.wrote.Store(true)
	}
	if err != nil {
		return uint32(n), toErrno(f.fsys.log, "write staging", f.stage.Name(), err)
	}
	if f.stream != nil && off < f.stream.sent {
		// Rewriting bytes already sent: the file goes up whole at close.
		f.abandonStreamLocked()
		f.streamOK = false
	}
	f.streamLocked(ctx, key)
	return uint32(n), 0
}

// Flush runs at every close(2) of a descriptor (more than once per handle
// after dup): the only place an upload error still reaches the program.
// It uploads only when the descriptor wrote and the closing process is
// the one that opened it. A close that wrote nothing (a file manager
// sniffing a file being copied, head -c 16) must not complete a streamed
// upload half way, and neither must a child process closing a descriptor
// it inherited while the writer goes on. Changes no writer's close
// uploaded go up at the last Release.
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	h.closed()
	if !h.wrote.Load() || (h.owner != 0 && processOf(ctx) != h.owner) {
		return 0
	}
	if h.file.createdEmpty() && h.file.fsys.holdsAnother(ctx, h.file.EmbeddedInode().StableAttr().Ino) {
		return 0 // a dup2 and close: the last close uploads
	}
	if h.file.fsys.opts.WriteBack {
		return h.file.writeBack(ctx)
	}
	return h.file.flush(ctx)
}

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return h.file.sync(ctx) }

// Release's result is ignored by the kernel; errors were reported by Flush.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.closed()
	h.mu.Lock()
	h.dropReadersLocked()
	h.mu.Unlock()
	h.file.release(h.passthrough, h.writable)
	return 0
}

// closed records the first Flush (or else the Release) of a handle.
func (h *handle) closed() {
	if h.closing.Swap(true) {
		return
	}
	f := h.file
	f.mu.Lock()
	if h.passthrough {
		f.livePassthrough--
	}
	f.mu.Unlock()
}
