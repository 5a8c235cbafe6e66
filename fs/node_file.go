package fs

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/s3drive/s3drive/cache"
	"github.com/s3drive/s3drive/s3backend"
)

// File is a regular file. Its content is the S3 object until someone
// writes: then it is a staging file on local disk, owned by the inode (not
// a handle) so that every handle, dup and Getattr sees the same bytes, and
// uploaded whole on Flush or Fsync.
//
// Lock order: ioMu, then mu. ioMu is held for as long as the staging file's
// content must not change (a write, a truncate, an upload, a rename); mu
// only for short state changes, so that Getattr and lookups — ls in a
// file manager — never wait for an upload.
type File struct {
	fs.Inode
	fsys *FS

	ioMu sync.Mutex

	mu        sync.Mutex // protects the following
	meta      cache.Meta // attributes; Size and ETag are the S3 object's
	stage     *os.File   // nil while the content is the S3 object
	stageSize int64
	dirty     bool // stage holds changes not yet in S3
	local     bool // no object exists in S3 yet (created here)
	// replaces is the ETag of the object a local file's first upload
	// replaces: it was renamed here onto a name that held one.
	replaces string
	// maybeLanded are the ETags of uploads that failed without an answer
	// (they may be in S3): a later write refused because one of them is
	// there replaces it instead of going beside it (conflict.go).
	maybeLanded []string
	uploading   bool // an upload is reading stage
	handles     int
	// metaPending: attributes changed (chmod, utimes, chown) on an object
	// otherwise in S3; stored by the next upload, rename, Flush, Fsync or
	// metaTimer, whichever comes first.
	metaPending bool
	metaTimer   *time.Timer
	// mtimeSet: meta.Mtime was set by utimes, not by the last write.
	mtimeSet bool
	// stream is the upload running while the file is written; streamOK
	// says the staged content was written from empty, so it may start one.
	stream   *stream
	streamOK bool
	// released: bytes from the start punched out of the staging file once
	// the stream's parts were confirmed, to make room (see space.go).
	released int64
	// fetch is the download into the data cache that reads share.
	fetch *fetcher
	// livePassthrough counts passthrough descriptors the kernel still
	// holds (a writable open beside one gets ETXTBSY). It drops at a
	// handle's first Flush — which close(2) sends before it returns — not
	// at Release, which the kernel sends later, on its own time: the next
	// open must see the close.
	livePassthrough int
	// writers counts handles open for writing.
	writers int
	// sent is how much of the staging file the upload under way has read.
	sent atomic.Int64
	// lastKey is the key the file last had in the tree; forgotten says
	// the kernel forgot it (out of the tree, but not removed), unlinked
	// that it was removed or replaced by a rename. See key.
	lastKey   atomic.Pointer[string]
	forgotten atomic.Bool
	unlinked  atomic.Bool
	// moving is {from, to} between a rename's success here and go-fuse's
	// move of the inode in the tree, which follows it (see key).
	moving atomic.Pointer[[2]string]
	// normalHandles counts ordinary handles until their Release. go-fuse
	// drops an inode's passthrough backing file at the Release of any of
	// its handles, passthrough or not; a passthrough open after that
	// registers a second backing file, which the kernel refuses (EIO) while
	// another passthrough descriptor holds the first. So passthrough starts
	// only once every ordinary handle is released.
	normalHandles int
}

var (
	_ = (fs.NodeOpener)((*File)(nil))
	_ = (fs.NodeGetattrer)((*File)(nil))
	_ = (fs.NodeSetattrer)((*File)(nil))
)

// newLocalFile is a file created on this mount as key, empty and not yet
// uploaded.
func (f *FS) newLocalFile(ctx context.Context, key string, mode uint32) (*File, syscall.Errno) {
	stage, err := f.createStage()
	if err != nil {
		return nil, toErrno(f.log, "create staging file", f.opts.StagingDir, err)
	}
	file := &File{fsys: f, stage: stage, dirty: true, local: true, streamOK: true,
		meta: f.ownedBy(ctx, cache.Meta{Mode: syscall.S_IFREG | mode&0o7777, Mtime: time.Now()})}
	file.mu.Lock()
	file.journalLocked(key, false, false)
	file.mu.Unlock()
	f.markDirty(file)
	return file, 0
}

// createdEmpty reports whether the file was created here and nothing was
// written to it yet.
func (f *File) createdEmpty() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.local && f.dirty && f.stageSize == 0
}

// writing reports whether a descriptor open for writing may still change
// the file.
func (f *File) writing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writers > 0
}

// key is the file's key: its path in the tree. The kernel may forget a
// file that still has something to send (attributes waiting, an upload to
// retry): go-fuse then takes it out of the tree, and the key it last had
// serves. A file unlinked or replaced has none.
func (f *File) key() (string, bool) {
	if k, ok := pathOf(f.fsys.rootInode(), f.EmbeddedInode()); ok {
		if mv := f.moving.Load(); mv != nil {
			if k == mv[0] {
				// Renamed, and go-fuse has not moved the inode yet: a
				// background upload now must go to the new name.
				return mv[1], true
			}
			f.moving.CompareAndSwap(mv, nil)
		}
		if last := f.lastKey.Load(); last == nil || *last != k {
			f.lastKey.Store(&k)
		}
		return k, true
	}
	if f.forgotten.Load() && !f.unlinked.Load() {
		if last := f.lastKey.Load(); last != nil {
			return *last, true
		}
	}
	return "", false
}

func (f *File) isLocal() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.local
}

// refresh takes new metadata from S3 unless local changes take precedence
// or the answer may predate one: the folder dirKey changed since its clock
// read asOf (uploads and attribute writes tick it under mu before they
// change meta, so the check cannot miss one).
func (f *File) refresh(m cache.Meta, dirKey string, asOf uint64) {
	f.mu.Lock()
	if f.stage == nil && !f.dirty && !f.metaPending && f.fsys.clock.now(dirKey) == asOf {
		f.meta = m
	}
	f.mu.Unlock()
}

// idleLocked reports whether the kernel may forget the file at no loss: no
// handle open, nothing staged, fetched or waiting to be stored.
func (f *File) idleLocked() bool {
	return f.handles == 0 && f.stage == nil && !f.dirty && !f.local && !f.metaPending && f.fetch == nil
}

// OnForget: the kernel forgot the file (see inodes.go). What it still has
// to send goes under the key it last had (see key).
func (f *File) OnForget() {
	f.forgotten.Store(true)
	f.fsys.inodes.forgotten(f.EmbeddedInode())
	f.mu.Lock()
	pending := f.dirty || f.metaPending
	if fe := f.fetch; fe != nil && fe.refs == 0 {
		f.fsys.parked.lru.Remove(fe) // ended by dropParked
	}
	f.mu.Unlock()
	if key, ok := f.key(); ok && pending {
		f.fsys.orphans.Store(key, f)
	}
}

// confirmedBy reports whether the file is the S3 object a listing shows:
// nothing staged or waiting here, and the same ETag, size and time.
func (f *File) confirmedBy(o cache.Observed) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stage == nil && !f.dirty && !f.metaPending && f.meta.Matches(o)
}

func (f *File) fillAttr(out *fuse.Attr) {
	f.mu.Lock()
	m := f.meta
	if f.stage != nil {
		m.Size = f.stageSize
	}
	f.mu.Unlock()
	f.fsys.attrFor(m, fileType(m), out)
}

// adoptMin is the size from which a written file joins the data cache.
// Smaller ones cost one GET if read back, but keeping them costs more: on
// ext4 every staging file kept (linked into the cache) makes the next
// one's creation slower (measured: cp -r of 1,168 small files 30% slower).
const adoptMin = 1 << 20

// retireStageLocked drops the staging file of a file whose content is in
// S3, keeping it in the data cache (a hard link: no copy) so that reading
// back what was just written costs no GET.
func (f *File) retireStageLocked() {
	if f.stage != nil && f.fsys.data != nil && !f.dirty && !f.local && f.meta.ETag != "" &&
		f.stageSize == f.meta.Size && f.stageSize >= adoptMin {
		if key, ok := f.key(); ok {
			if err := f.fsys.data.Adopt(key, f.meta.ETag, f.stage.Name(), f.stageSize); err != nil {
				f.fsys.log.Warn("could not keep an uploaded file in the data cache", "key", key, "err", err)
			}
		}
	}
	f.dropStageLocked()
}

func (f *File) dropStageLocked() {
	if f.stage == nil {
		return
	}
	f.forgetStageLocked()
	f.stage.Close()
	os.Remove(f.stage.Name())
	f.stage = nil
	f.stageSize = 0
}

// ensureStagedLocked makes the staging file hold the current content,
// downloading the object if it is not staged yet (writes into the middle
// of an existing object need its bytes).
func (f *File) ensureStagedLocked(ctx context.Context, key string, keep int64) error {
	if f.stage != nil {
		return nil
	}
	stage, err := f.fsys.createStage()
	if err != nil {
		return err
	}
	size := min(f.meta.Size, keep)
	if size > 0 {
		rc, err := f.contentReader(ctx, key, size)
		if errors.Is(err, s3backend.ErrPrecondition) && !f.fsys.opts.Overwrite {
			// Rewritten elsewhere since this mount read it: the version
			// this file is based on is gone from S3. The changes made
			// here apply to what is there now, and, as the base stays
			// the old version, go beside it at upload (conflict.go).
			f.fsys.log.Warn("the file was changed elsewhere since this mount read it; changes made here will be saved beside it", "key", key)
			rc, err = f.fsys.be.Get(ctx, key, 0, size, "")
		}
		if err == nil {
			_, err = io.Copy(stage, rc)
			rc.Close()
		}
		if err == nil {
			err = stage.Truncate(size) // the size this file has here
		}
		if err != nil {
			stage.Close()
			os.Remove(stage.Name())
			return err
		}
	}
	f.stage, f.stageSize = stage, size
	f.streamOK = size == 0
	f.journalLocked(key, !f.dirty, false)
	return nil
}

// contentReader reads the object's first size bytes: from the data cache
// when it holds this version, else with one GET.
func (f *File) contentReader(ctx context.Context, key string, size int64) (io.ReadCloser, error) {
	if f.fsys.data != nil {
		if c, ok := f.fsys.data.Open(key, f.meta.ETag); ok {
			return struct {
				io.Reader
				io.Closer
			}{io.LimitReader(c, size), c}, nil
		}
	}
	return f.fsys.be.Get(ctx, key, 0, size, f.meta.ETag)
}

func (f *File) setDirtyLocked() {
	if !f.dirty {
		if key, ok := f.key(); ok {
			f.journalLocked(key, false, false)
		}
	}
	f.dirty = true
	f.meta.Mtime = time.Now()
	f.meta.Ctime = f.meta.Mtime
	f.mtimeSet = false
	// Writing to a set-user-ID or set-group-ID file clears those bits, as
	// on a local disk (the kernel leaves it to us: HANDLE_KILLPRIV_V2).
	f.meta.Mode &^= syscall.S_ISUID | syscall.S_ISGID
	f.fsys.markDirty(f)
}

func (f *File) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f.fillAttr(&out.Attr)
	return 0
}

func (f *File) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	writable := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	if writable && f.fsys.opts.ReadOnly {
		return nil, 0, syscall.EROFS
	}
	if writable && f.livePassthroughCount() > 0 {
		// The kernel would fail this open with EIO: every open of a file
		// open in passthrough mode must be a passthrough one too.
		return nil, 0, syscall.ETXTBSY
	}
	if !writable {
		if ph, ok := f.openCached(); ok {
			return ph, 0, 0
		}
	}
	h := f.open(ctx, flags)
	if writable && flags&syscall.O_TRUNC != 0 {
		h.wrote.Store(true)
		f.ioMu.Lock()
		f.mu.Lock()
		errno := f.truncateLocked(ctx, 0)
		f.mu.Unlock()
		f.ioMu.Unlock()
		if errno != 0 {
			h.Release(ctx)
			return nil, 0, errno
		}
	}
	return h, f.fsys.openFlags(flags, flags&syscall.O_TRUNC != 0), 0
}

func (f *File) open(ctx context.Context, flags uint32) *handle {
	f.mu.Lock()
	f.handles++
	f.normalHandles++
	f.mu.Unlock()
	h := &handle{file: f}
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		h.owner, h.writable = processOf(ctx), true
		f.mu.Lock()
		f.writers++
		f.mu.Unlock()
	}
	return h
}

func (f *File) livePassthroughCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.livePassthrough
}

// openCached opens a clean file whose content is whole in the data cache
// for reading straight from there: by the kernel itself where FUSE
// passthrough is available, else through Read, with no request either way.
func (f *File) openCached() (fs.FileHandle, bool) {
	if f.fsys.data == nil {
		return nil, false
	}
	key, ok := f.key()
	f.mu.Lock()
	defer f.mu.Unlock()
	if !ok || f.stage != nil || f.dirty || f.local || f.meta.ETag == "" {
		return nil, false
	}
	cached, ok := f.fsys.data.Open(key, f.meta.ETag)
	if !ok {
		return nil, false
	}
	f.handles++
	h := &handle{file: f, cached: cached, cachedETag: f.meta.ETag}
	// Passthrough only where no ordinary handle is left: the kernel
	// refuses to mix modes, and go-fuse to mix releases (normalHandles).
	if !f.fsys.passthrough.Load() || f.normalHandles > 0 {
		f.normalHandles++
		return h, true
	}
	f.livePassthrough++
	h.passthrough = true
	return &passthroughHandle{h}, true
}

// fetcherFor returns the inode's download of m's version (starting it),
// with a reference the caller gives back with releaseFetcher.
func (f *File) fetcherFor(key string, m cache.Meta) (*fetcher, error) {
	f.mu.Lock()
	old := f.fetch
	if old != nil && old.etag == m.ETag && !old.broken() {
		if old.refs == 0 {
			f.fsys.parked.lru.Remove(old) // read again: no longer parked
		}
		old.refs++
		f.mu.Unlock()
		return old, nil
	}
	fe, err := f.fsys.newFetcher(key, m.ETag, m.Size)
	if err != nil {
		f.mu.Unlock()
		return nil, err
	}
	fe.refs = 1
	f.fetch = fe // a previous one ends with its last reader
	if old != nil && old.refs == 0 {
		// Parked, of a version the file no longer is (or broken): the
		// LRU's eviction ends it (dropParked).
		f.fsys.parked.lru.Remove(old)
	}
	f.mu.Unlock()
	return fe, nil
}

func (f *File) releaseFetcher(fe *fetcher) {
	f.mu.Lock()
	fe.refs--
	last := fe.refs == 0
	park := last && f.fetch == fe && !fe.broken() && !fe.isCommitted()
	if last && f.fetch == fe && !park {
		f.fetch = nil
	}
	f.mu.Unlock()
	switch {
	case park:
		f.fsys.parked.lru.Add(fe, f)
	case last:
		fe.finish()
	}
}

func (f *File) truncateLocked(ctx context.Context, size int64) syscall.Errno {
	key, _ := f.key()
	if f.released > 0 && size > 0 && f.stream != nil && size < f.stream.sent {
		// Parts below the new end are in S3 and gone from disk: the
		// upload can neither keep them nor start over (releaseSentLocked).
		f.fsys.log.Error("truncate below what was released to make room on the cache disk", "key", key)
		return syscall.EIO
	}
	if f.stage == nil && size == 0 {
		f.meta.Size = 0 // nothing to fetch
	}
	if err := f.ensureStagedLocked(ctx, key, size); err != nil {
		return toErrno(f.fsys.log, "truncate", key, err)
	}
	if err := f.stage.Truncate(size); err != nil {
		return toErrno(f.fsys.log, "truncate", key, err)
	}
	if size == 0 {
		f.released = 0 // nothing of the old content is needed
		f.streamOK = true
	}
	if f.stream != nil && size < f.stream.sent {
		f.abandonStreamLocked()
	}
	f.stageSize = size
	f.setDirtyLocked()
	return 0
}

// Setattr changes size in the staging file (uploaded at close) and
// attributes in the object's metadata: with the next upload if one is
// pending, else by a self-copy that replaces the metadata, deferred by
// MetaDelay so that the chmod and utimes rsync and cp -p send right after
// close, and the rename that usually follows, cost one copy in all.
func (f *File) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if f.fsys.opts.ReadOnly {
		return syscall.EROFS
	}
	f.ioMu.Lock()
	defer f.ioMu.Unlock()
	f.mu.Lock()
	if size, ok := in.GetSize(); ok {
		if errno := f.truncateLocked(ctx, int64(size)); errno != 0 {
			f.mu.Unlock()
			return errno
		}
		if h, ok := fh.(*handle); ok {
			h.wrote.Store(true) // ftruncate: that descriptor's close uploads
		}
	}
	old := f.meta
	f.meta = applySetattr(f.meta, in, fileType(f.meta))
	if _, ok := in.GetMTime(); ok {
		f.mtimeSet = true
	}
	// truncate(2) or a chmod of a staged file with no open handle: nothing
	// else will upload it. Under write-back it waits its turn, as its
	// close did, and what changed is journaled with it.
	upload := f.dirty && f.handles == 0
	queue := upload && f.fsys.opts.WriteBack
	if queue {
		if key, ok := f.key(); ok {
			f.rejournalLocked(key)
		}
		upload = false
	}
	if !f.dirty && !f.local && !sameAttrs(old, f.meta) {
		f.deferMetaLocked()
	}
	f.mu.Unlock()
	if queue {
		f.fsys.queueWriteBack(f)
	}
	if upload {
		if errno := f.upload(ctx); errno != 0 {
			return errno
		}
	}
	f.fillAttr(&out.Attr)
	return 0
}

// deferMetaLocked schedules storing f.meta's attributes on the object.
func (f *File) deferMetaLocked() {
	if f.metaPending {
		return
	}
	f.metaPending = true
	f.key() // notes the key, should the kernel forget the file before it is stored
	f.fsys.markDirty(f)
	f.metaTimer = time.AfterFunc(f.fsys.opts.MetaDelay, f.metaDue)
}

func (f *File) clearMetaPendingLocked() {
	f.metaPending = false
	if f.metaTimer != nil {
		f.metaTimer.Stop()
		f.metaTimer = nil
	}
}

// settleLocked drops f from the set unmount must flush once nothing of it
// is left to send.
func (f *File) settleLocked() {
	if !f.dirty && !f.metaPending {
		f.fsys.markClean(f)
		if f.forgotten.Load() {
			if key, ok := f.key(); ok {
				f.fsys.orphans.CompareAndDelete(key, f)
			}
		}
	}
}

// metaDue stores deferred attributes when nothing else did in time. A
// failure is retried later, and at unmount, which reports it.
func (f *File) metaDue() {
	if errno := f.sync(context.Background()); errno != 0 {
		f.mu.Lock()
		if f.metaPending {
			f.metaTimer = time.AfterFunc(metaRetry, f.metaDue)
		}
		f.mu.Unlock()
	}
}

// metaRetry spaces retries of a deferred attribute change that failed.
const metaRetry = 5 * time.Second

// sameAttrs reports whether a and b store the same attributes; ctime
// follows the others (a change of it alone is not worth a copy).
func sameAttrs(a, b cache.Meta) bool {
	return a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID && a.HasUID == b.HasUID &&
		a.HasGID == b.HasGID && a.Mtime.Equal(b.Mtime) && a.Atime.Equal(b.Atime)
}

// rewriteMetaLocked stores f.meta's attributes on the existing object with
// one CopyObject onto itself (UploadPartCopy above 5 GiB).
func (f *File) rewriteMetaLocked(ctx context.Context) syscall.Errno {
	key, ok := f.key()
	if !ok {
		return 0
	}
	if f.meta.Mode == 0 {
		f.meta.Mode = syscall.S_IFREG | f.fsys.opts.FileMode
	}
	var cond s3backend.Conditions
	if !f.fsys.opts.Overwrite {
		cond.SourceIfMatch = f.meta.ETag // the version whose attributes change
	}
	info, err := f.fsys.be.Copy(ctx, key, key, f.meta.Size,
		&s3backend.PutOptions{ContentType: contentType(key), Metadata: encodeMeta(f.meta)}, cond)
	if errors.Is(err, s3backend.ErrPrecondition) {
		return f.attributesOvertakenLocked(ctx, key)
	}
	if err != nil {
		return toErrno(f.fsys.log, "setattr", key, err)
	}
	f.fsys.clock.tickKey(key) // before meta changes: see refresh
	f.meta.ETag, f.meta.LastModified = info.ETag, info.LastModified
	f.fsys.recordUpload(key, f.meta)
	f.clearMetaPendingLocked()
	f.settleLocked()
	return 0
}

func (f *File) release(passthrough, writable bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handles--
	if writable {
		f.writers--
	}
	if !passthrough {
		f.normalHandles--
	}
	if f.handles > 0 || f.uploading {
		return // an upload in flight drops the stage when it ends
	}
	if f.dirty {
		if key, ok := f.key(); ok {
			// Written through a descriptor whose closes were not the
			// writer's (see handle.Flush), or queued by write-back's close
			// already: upload now, as no close will, or in its turn.
			if f.fsys.opts.WriteBack {
				go f.fsys.queueWriteBack(f)
				return
			}
			go func() {
				if errno := f.flush(context.Background()); errno != 0 {
					f.fsys.log.Error("file closed with changes not uploaded; kept for retry", "key", key, "errno", errno)
				}
			}()
		}
		return
	}
	f.retireStageLocked()
}
