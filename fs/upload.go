package fs

import (
	"context"
	"errors"
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
	f.stream = nil
	f.uploading = true
	f.journalLocked(key, false, true)
	f.mu.Unlock()

	// The caller being interrupted must not abandon an upload half done.
	ctx = context.WithoutCancel(ctx)
	var info s3backend.ObjectInfo
	var err error
	streamed := false
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
		if info, err = s.finish(ctx, stage, m.Size, true); err == nil {
			streamed = true
			if s.key != key {
				info, err = f.fsys.be.Copy(ctx, s.key, key, m.Size, nil)
				if err == nil {
					err = f.fsys.be.Delete(ctx, s.key)
				}
			}
		}
	case s != nil:
		if info, err = s.finish(ctx, stage, m.Size, false); err != nil {
			f.fsys.log.Warn("streamed upload failed; uploading the file whole", "key", key, "err", err)
		} else {
			streamed = true
		}
	}
	if !streamed && !released {
		f.sent.Store(0)
		info, err = f.fsys.be.Upload(ctx, key, countingReaderAt{stage, &f.sent}, m.Size,
			s3backend.PutOptions{ContentType: contentType(key), Metadata: encodeMeta(m)})
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploading = false
	if err != nil && released && s != nil && f.stream == nil {
		f.stream = s // kept for the retry: see finish
	}
	if err != nil {
		if tries := f.fsys.uploadFailed(f, err); tries == 1 {
			f.fsys.log.Error("upload failed; staged data kept and retried in the background", "key", key, "staging", stage.Name(), "err", err)
		} else {
			f.fsys.log.Debug("upload retry failed", "key", key, "tries", tries, "err", err)
		}
		f.journalFailedLocked(key)
		return syscall.EIO
	}
	f.fsys.uploaded(f)
	f.fsys.clock.tickKey(key) // before meta changes: see refresh
	m.ETag, m.LastModified = info.ETag, info.LastModified
	f.meta, f.dirty, f.local = m, false, false
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
