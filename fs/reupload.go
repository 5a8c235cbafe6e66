package fs

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/s3drive/s3drive/s3backend"
)

// A small file moved right after its upload — rsync's temporary file,
// renamed once closed, its times and mode set — is moved by uploading its
// bytes again under the new name, where the server would check a copy's
// conditions with a HEAD first (versitygw ignores them on CopyObject, not
// on PutObject): one request instead of two, as many round trips as a
// move cost before copies were conditional. For that, the staging file of
// a small file stays a moment after its upload (keptStage).

const (
	// reuploadMax is the largest file moved by a new upload: about what a
	// round trip carries on a modest link.
	reuploadMax = 64 << 10
	// keptStage is how long a small file's staged bytes stay on disk after
	// its upload and last close, for a rename to use.
	keptStage = 2 * time.Second
)

// copyChecked is what s3backend.S3 reports: conditional copies cost a HEAD.
type copyChecked interface{ CopyConditionsChecked() bool }

// reuploadMoves reports whether moves of small files go by new upload.
func (f *FS) reuploadMoves() bool {
	c, ok := f.opts.Backend.(copyChecked)
	return ok && c.CopyConditionsChecked() && !f.opts.Overwrite
}

// keepStageLocked keeps a small uploaded file's staging file for
// keptStage, for a move to upload again, and reports whether it did. The
// caller holds mu.
func (f *File) keepStageLocked() bool {
	if f.stage == nil || f.dirty || f.stageSize > reuploadMax || !f.fsys.reuploadMoves() {
		return false
	}
	stage := f.stage
	time.AfterFunc(keptStage, func() {
		f.ioMu.Lock()
		defer f.ioMu.Unlock()
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.stage == stage && f.handles == 0 && !f.dirty && !f.uploading {
			f.dropStageLocked()
		}
	})
	return true
}

// reuploadLocked moves the file from srcKey to dstKey by uploading its
// kept bytes there, under the same conditions a copy would carry, and
// reports whether it did; on false the caller copies as usual. The caller
// holds ioMu and mu.
func (f *File) reuploadLocked(ctx context.Context, srcKey, dstKey, victim string) (bool, syscall.Errno) {
	if f.stage == nil || f.dirty || f.local || f.stageSize != f.meta.Size || f.stageSize > reuploadMax || !f.fsys.reuploadMoves() {
		return false, 0
	}
	m := f.meta
	cond := s3backend.Conditions{IfMatch: victim, IfNoneMatch: victim == ""}
	info, err := f.fsys.be.Upload(context.WithoutCancel(ctx), dstKey, f.stage, m.Size,
		s3backend.PutOptions{ContentType: contentType(dstKey), Metadata: encodeMeta(m), Cond: cond})
	if errors.Is(err, s3backend.ErrPrecondition) {
		return false, 0 // the copy path keeps both
	}
	if err != nil {
		return true, toErrno(f.fsys.log, "rename", srcKey, err)
	}
	f.meta = f.fsys.moved(srcKey, dstKey, m, info)
	f.clearMetaPendingLocked()
	f.settleLocked()
	return true, 0
}
