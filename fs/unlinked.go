package fs

import (
	"context"
	"slices"
)

// unlink takes the file out of the tree: staged changes are dropped (POSIX
// discards the data of a file unlinked while open, at its last close), and
// open descriptors keep reading what the file held. It reports what S3
// holds at key (storedLocked), and whether there is anything at all: a
// file created here and never uploaded has nothing, unless it was moved
// onto a name that held an object, which is then the one to delete. With
// write-back, a closed file's data may still wait for its upload, and
// must not land after this.
func (f *File) unlink(ctx context.Context, key string) (stored replaced, inS3 bool) {
	f.ioMu.Lock() // an upload in flight finishes first, then is deleted
	defer f.ioMu.Unlock()
	return f.unlinkHeld(ctx, key)
}

// unlinkHeld is unlink with ioMu held by the caller.
func (f *File) unlinkHeld(ctx context.Context, key string) (stored replaced, inS3 bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unlinked.Store(true)
	f.keepReadableLocked(ctx, key)
	if f.dirty {
		f.journalLocked(key, true, false) // discarded: nothing for a next run to upload
	}
	f.dirty = false
	f.released = 0 // the data is discarded: its upload goes too
	f.abandonStreamLocked()
	f.clearMetaPendingLocked()
	f.settleLocked()
	if f.handles == 0 {
		f.dropStageLocked()
	}
	stored = f.storedLocked()
	f.maybeLanded = nil
	return stored, !f.local || stored.etag != "" || len(stored.maybe) > 0
}

// replacedHeld is what a rename about to replace the file replaces
// (storedLocked), without unlinking it: the rename may still fail, and
// the file must then keep everything, its waiting data first. Its
// content is staged for its open descriptors before the move replaces
// the object. The caller holds ioMu until the move is decided, so that no
// upload of it starts meanwhile.
func (f *File) replacedHeld(ctx context.Context, key string) replaced {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keepReadableLocked(ctx, key)
	return f.storedLocked()
}

// moveFailedHeld records that a move onto the file failed, though its
// copy (of the version etag) may have landed at key without an answer:
// the move did not happen, so the file's next upload replaces that copy
// rather than keeping its data beside it; journaled, for recovery too.
// The caller holds ioMu.
func (f *File) moveFailedHeld(key, etag string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mayHaveLandedLocked(etag)
	f.rejournalLocked(key)
}

// storedLocked is the version of the file S3 holds at its key, as far as
// this mount knows: the one it was based on (for a file not uploaded yet,
// the one it replaces there, if any), or one its unanswered uploads may
// have left instead (maybeLanded).
func (f *File) storedLocked() replaced {
	r := replaced{etag: f.meta.ETag, maybe: slices.Clone(f.maybeLanded)}
	if f.local {
		r.etag = f.replaces
	}
	return r
}

// keepReadableLocked stages the content of a file about to lose its key
// (unlinked, or replaced by a rename) while descriptors are open on it:
// once the object is deleted, reads through them are served from the
// staging file until the last close. It costs one GET of the object,
// unless the data cache holds it. The caller holds ioMu and mu.
func (f *File) keepReadableLocked(ctx context.Context, key string) {
	if f.handles == 0 || f.stage != nil || f.local {
		return
	}
	if err := f.ensureStagedLocked(context.WithoutCancel(ctx), key, f.meta.Size); err != nil {
		f.fsys.log.Warn("a removed file's content could not be kept for its open descriptors; their reads fail",
			"key", key, "err", err)
	}
}

// etag is the ETag of the symlink's object.
func (l *Symlink) etag() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.meta.ETag
}
