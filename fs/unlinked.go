package fs

import (
	"context"
	"errors"
	"slices"

	"github.com/s3drive/s3drive/s3backend"
)

// unlink takes the file out of the tree: staged changes are dropped (POSIX
// discards the data of a file unlinked while open, at its last close), and
// open descriptors keep reading what the file held. It reports the ETag of
// the version S3 holds at key, and whether there is one: a file created
// here and never uploaded has none, unless it was renamed onto a name that
// held an object, which is then the one to delete. Both unlink and a
// rename replacing the file use it: with write-back, a closed file's data
// may still wait for its upload, and must not land after this.
func (f *File) unlink(ctx context.Context, key string) (etag string, inS3 bool) {
	f.ioMu.Lock() // an upload in flight finishes first, then is deleted
	defer f.ioMu.Unlock()
	landed := f.landed(ctx, key)
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
	f.maybeLanded = nil
	switch {
	case landed != "":
		return landed, true
	case f.local:
		return f.replaces, f.replaces != ""
	}
	return f.meta.ETag, true
}

// landed is the ETag of the version S3 holds at key if an upload of this
// file that failed without an answer did land there after all (see
// maybeLanded), else "". It costs a HEAD, only for a file with such an
// attempt: a removal or a move of it must take that version away, not
// the one before it. The caller holds ioMu, so no upload changes the
// answer meanwhile.
func (f *File) landed(ctx context.Context, key string) string {
	f.mu.Lock()
	attempts := slices.Clone(f.maybeLanded)
	f.mu.Unlock()
	if len(attempts) == 0 {
		return ""
	}
	info, err := f.fsys.be.Head(context.WithoutCancel(ctx), key)
	if err != nil {
		if !errors.Is(err, s3backend.ErrNotFound) {
			f.fsys.log.Warn("could not learn whether an unanswered upload landed; if it did, it stays in S3", "key", key, "err", err)
		}
		return ""
	}
	if slices.Contains(attempts, info.ETag) {
		return info.ETag
	}
	return ""
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
