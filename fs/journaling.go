package fs

import (
	"errors"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/s3drive/s3drive/fs/journal"
)

// entryLocked describes f's staging file for the journal. The caller
// holds mu and f.stage is set.
func (f *File) entryLocked(key string, closed bool) journal.Entry {
	m := f.meta
	m.Size = f.stageSize
	if m.Mode == 0 {
		m.Mode = syscall.S_IFREG | f.fsys.opts.FileMode
	}
	base := f.meta.ETag
	if f.local {
		base = f.replaces // "" for a name believed free
	}
	return journal.Entry{Stage: filepath.Base(f.stage.Name()), Key: key, Base: base, Maybe: slices.Clone(f.maybeLanded),
		Size: f.stageSize, ContentType: contentType(key), Metadata: encodeMeta(m), Closed: closed, Released: f.released}
}

// journalLocked records f's staging file: clean (S3 has its content),
// being written, or closed (to be uploaded by the next run if this one
// cannot). The caller holds mu.
func (f *File) journalLocked(key string, clean, closed bool) {
	if f.fsys.journal == nil || f.stage == nil {
		return
	}
	e := f.entryLocked(key, closed)
	e.Clean = clean
	if err := f.fsys.journal.Record(e); err != nil {
		f.fsys.log.Error("journal write failed: a crash now would leave this file's changes unnamed", "key", key, "err", err)
	}
}

// journalFailedLocked makes the staging file and its entry durable after
// an upload failed: the program was told its data is not in S3, so it
// must survive even a power cut until an upload succeeds.
func (f *File) journalFailedLocked(key string) {
	if f.fsys.journal == nil || f.stage == nil {
		return
	}
	if err := f.durableLocked(key); err != nil {
		f.fsys.log.Error("making staged data durable failed: a crash now could lose it", "key", key, "err", err)
	}
}

// durableLocked syncs the staging file and records it, closed, in the
// journal, synced too: from then on even a power cut leaves it for the
// next mount to upload. The caller holds mu.
func (f *File) durableLocked(key string) error {
	if f.fsys.journal == nil || f.stage == nil {
		return errors.New("no journal to make it durable in")
	}
	if err := f.stage.Sync(); err != nil {
		return err
	}
	return f.fsys.journal.Durable(f.entryLocked(key, true))
}

// forgetStageLocked drops the journal entry of a staging file about to be
// removed (or whose data was discarded).
func (f *File) forgetStageLocked() {
	if f.fsys.journal != nil && f.stage != nil {
		_ = f.fsys.journal.Forget(filepath.Base(f.stage.Name()))
	}
}

// rejournalLocked records a staged file's entry again after its key or
// base changed (a rename): a closed file's data may wait for its upload
// (a failed one; every close under write-back), and a crash now must
// leave it for the next run under the name it has, durably so if it was.
// The caller holds mu.
func (f *File) rejournalLocked(key string) {
	if f.fsys.journal == nil || f.stage == nil || !f.dirty {
		return
	}
	if f.writers > 0 {
		f.journalLocked(key, false, false)
		return
	}
	if err := f.durableLocked(key); err != nil {
		f.fsys.log.Error("making a moved file's staged data durable failed: a crash now could lose it", "key", key, "err", err)
	}
}
