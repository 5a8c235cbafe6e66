package fs

import (
	"context"
	"errors"
	"slices"
	"syscall"

	"github.com/s3drive/s3drive/s3backend"
)

// A file's way to S3: close (flush), fsync (sync) and the upload itself,
// streamed or whole, with what it tells the journal and the retries.

// flush uploads staged data (close). It leaves deferred attributes
// waiting: rsync opens a file it has closed just to fchmod it before the
// rename, and each close storing them would cost a copy.
func (f *File) flush(ctx context.Context) syscall.Errno {
	f.ioMu.Lock()
	defer f.ioMu.Unlock()
	return f.upload(ctx)
}

// uploadClosed is a background upload (write-back, retries): it uploads
// the file unless a writer has it open, whose close uploads it, and
// reports whether it tried. The check is made holding ioMu: a writer that
// opens after it waits for the upload before it truncates or writes, so
// the upload sends a state some writer closed, never one half rewritten.
func (f *File) uploadClosed(ctx context.Context) (errno syscall.Errno, tried bool) {
	f.ioMu.Lock()
	defer f.ioMu.Unlock()
	if f.writing() {
		return 0, false
	}
	return f.upload(ctx), true
}

// sync makes S3 hold everything known of the file: staged data and
// deferred attributes (fsync, unmount).
func (f *File) sync(ctx context.Context) syscall.Errno {
	f.ioMu.Lock()
	defer f.ioMu.Unlock()
	if errno := f.upload(ctx); errno != 0 {
		return errno
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.metaPending || f.dirty || f.local {
		return 0
	}
	return f.rewriteMetaLocked(ctx)
}

// upload sends staged changes; the caller holds ioMu (so the staging file
// cannot change underneath) but not mu. It returns success only once S3 has
// the whole object; on failure the staged data stays, still dirty, for the
// next Flush, Fsync or unmount to retry.
func (f *File) upload(ctx context.Context) syscall.Errno {
	f.mu.Lock()
	if !f.dirty {
		f.mu.Unlock()
		return 0
	}
	key, ok := f.key()
	if !ok {
		// Unlinked while open: POSIX discards its data.
		f.dirty = false
		f.clearMetaPendingLocked()
		f.settleLocked()
		f.mu.Unlock()
		return 0
	}
	m := f.meta
	m.Size = f.stageSize
	if m.Mode == 0 {
		m.Mode = syscall.S_IFREG | f.fsys.opts.FileMode
	}
	stage := f.stage
	s := f.stream
	released := f.released > 0
	cond := f.conditionsLocked()
	f.stream = nil
	f.uploading = true
	f.journalLocked(key, false, true)
	f.mu.Unlock()

	// The caller being interrupted must not abandon an upload half done.
	ctx = context.WithoutCancel(ctx)
	var (
		info s3backend.ObjectInfo
		err  error
		// savedAs is where the data went when key was written elsewhere
		// since this file was based on it (see conflict.go).
		savedAs  string
		streamed bool
	)
	if s != nil && s.key != key && !released {
		// Its folder was renamed without a flush first (renameDir
		// flushes; rename abandons): the stream's key is not the file's.
		s.abandon()
		s = nil
	}
	switch {
	case released && s == nil:
		err = errors.New("part of the file was released from the cache disk and its upload is gone")
	case released:
		// The start is gone from disk: only this upload can finish it.
		info, savedAs, err = f.fsys.finishReleased(ctx, s, stage, key, m.Size, cond)
		streamed = err == nil
	case s != nil:
		info, err = s.finish(ctx, stage, m.Size, false, cond)
		switch {
		case err == nil:
			streamed = true
		case !errors.Is(err, s3backend.ErrPrecondition):
			f.fsys.log.Warn("streamed upload failed; uploading the file whole", "key", key, "err", err)
		}
	}
	if !streamed && !released {
		whole := func(ctx context.Context, name string, c s3backend.Conditions) (s3backend.ObjectInfo, error) {
			return f.fsys.be.Upload(ctx, name, countingReaderAt{stage, &f.sent}, m.Size,
				s3backend.PutOptions{ContentType: contentType(name), Metadata: encodeMeta(m), Cond: c})
		}
		f.sent.Store(0)
		if !errors.Is(err, s3backend.ErrPrecondition) {
			info, err = whole(ctx, key, cond)
		}
		if errors.Is(err, s3backend.ErrPrecondition) {
			f.mu.Lock()
			attempts := slices.Clone(f.maybeLanded)
			f.mu.Unlock()
			info, savedAs, err = f.fsys.keepBoth(ctx, key, whole, f.fsys.stagedAs(stage, m.Size, encodeMeta(m)),
				func(etag string) bool { return slices.Contains(attempts, etag) })
		}
	}
	// An attempt that failed without an answer may have landed: what it
	// would be called, should a later write find it there.
	var attempted string
	if err != nil && !released && !errors.Is(err, s3backend.ErrPrecondition) {
		attempted = contentETag(stage, m.Size, f.fsys.be.PartSize())
	}
	var theirs s3backend.ObjectInfo
	if err == nil && savedAs != "" && savedAs != key {
		// The name shows the other writer's version from now on.
		theirs, err = f.fsys.be.Head(ctx, key)
		if errors.Is(err, s3backend.ErrNotFound) {
			theirs, err = s3backend.ObjectInfo{Key: key}, nil
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploading = false
	if err != nil && released && s != nil && f.stream == nil {
		f.stream = s // kept for the retry: see finish
	}
	if err != nil {
		f.mayHaveLandedLocked(attempted)
		if tries := f.fsys.uploadFailed(f, err); tries == 1 {
			f.fsys.log.Error("upload failed; staged data kept and retried in the background", "key", key, "staging", stage.Name(), "err", err)
		} else {
			f.fsys.log.Debug("upload retry failed", "key", key, "tries", tries, "err", err)
		}
		f.journalFailedLocked(key)
		return syscall.EIO
	}
	if savedAs != "" && savedAs != key {
		m.ETag, m.LastModified = info.ETag, info.LastModified
		f.yieldLocked(key, savedAs, m, theirs)
		// The kernel's pages and size are this mount's version, not the
		// one the name holds now.
		f.mu.Unlock()
		f.NotifyContent(0, 0)
		f.mu.Lock() // for the deferred unlock
		return 0
	}
	f.fsys.uploaded(f)
	f.fsys.clock.tickKey(key) // before meta changes: see refresh
	m.ETag, m.LastModified = info.ETag, info.LastModified
	f.meta, f.dirty, f.local, f.replaces, f.maybeLanded = m, false, false, "", nil
	f.released = 0
	f.clearMetaPendingLocked()
	if streamed && !sameStored(s.meta, m, f.mtimeSet) {
		// Attributes changed after the upload began (cp -p, fchmod):
		// stored by a rename, fsync or MetaDelay, as a chmod would be.
		f.deferMetaLocked()
	}
	f.settleLocked()
	f.fsys.recordUpload(key, m)
	if f.handles == 0 {
		f.retireStageLocked() // uploaded after its last close (unmount, truncate(2))
	} else if !f.dirty {
		f.journalLocked(key, true, false)
	}
	return 0
}
