package fs

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/s3drive/s3drive/cache"
	"github.com/s3drive/s3drive/s3backend"
)

// Several writers. Every write of a name is conditional on the version
// this mount based it on (S3's conditional writes): If-Match its ETag when
// the mount knew an object there, If-None-Match: * when it believed the
// name free. A write refused because someone else wrote the name since
// loses nothing: the data goes to a sibling, "name (conflicted copy DATE
// HOST).ext", the name shows the other writer's version, and the close or
// fsync succeeds, since the data is safe. The rule is the journal's
// recovery rule too (recover.go). Options.Overwrite turns it off: last
// writer wins, as before.

// conditionsLocked is the version of its key the file's next upload
// replaces. The caller holds mu.
func (f *File) conditionsLocked() s3backend.Conditions {
	switch {
	case f.fsys.opts.Overwrite:
		return s3backend.Conditions{}
	case f.local && f.replaces != "":
		return s3backend.Conditions{IfMatch: f.replaces}
	case f.local:
		return s3backend.Conditions{IfNoneMatch: true}
	case f.meta.ETag != "":
		return s3backend.Conditions{IfMatch: f.meta.ETag}
	}
	return s3backend.Conditions{}
}

// writeFunc writes the data being stored to name, under cond.
type writeFunc func(ctx context.Context, name string, cond s3backend.Conditions) (s3backend.ObjectInfo, error)

// conflictTries bounds the sibling names tried when each is taken between
// finding it free and writing it.
const conflictTries = 5

// keepBoth stores data whose conditional write of key was refused. If key
// holds this very data (mine says so), the write had landed and only its
// answer was lost, and an automatic retry was refused by its own success.
// If key is gone (removed elsewhere), the edit takes the name back.
// Otherwise the data goes to a free sibling name. It returns where the
// data went.
//
// earlier, if set, recognises a version this mount wrote in an attempt
// whose answer never came (a connection cut after the request was sent):
// the base is then that version, and the data replaces it.
func (f *FS) keepBoth(ctx context.Context, key string, write writeFunc, mine func(s3backend.ObjectInfo) bool, earlier func(etag string) bool) (s3backend.ObjectInfo, string, error) {
	head, err := f.be.Head(ctx, key)
	switch {
	case err == nil && mine(head):
		return head, key, nil
	case err == nil && earlier != nil && earlier(head.ETag):
		info, err := write(ctx, key, s3backend.Conditions{IfMatch: head.ETag})
		if !errors.Is(err, s3backend.ErrPrecondition) {
			return info, key, err
		}
	case errors.Is(err, s3backend.ErrNotFound):
		info, err := write(ctx, key, s3backend.Conditions{IfNoneMatch: true})
		if !errors.Is(err, s3backend.ErrPrecondition) {
			return info, key, err
		}
	case err != nil:
		return s3backend.ObjectInfo{}, "", err
	}
	for range conflictTries {
		name, err := f.conflictName(ctx, key)
		if err != nil {
			return s3backend.ObjectInfo{}, "", err
		}
		info, err := write(ctx, name, s3backend.Conditions{IfNoneMatch: true})
		if errors.Is(err, s3backend.ErrPrecondition) {
			continue // taken meanwhile: the next free name
		}
		if err == nil {
			f.log.Warn("conflict: the file was changed elsewhere since this mount read it; these changes were saved beside it",
				"key", key, "saved_as", name)
			f.noteConflict(key, name)
		}
		return info, name, err
	}
	return s3backend.ObjectInfo{}, "", errors.New("conflict: no free sibling name for the changes")
}

// finishReleased completes a streamed upload whose start was released from
// the staging file: the parts in S3 are the only copy, and a multipart
// upload can only complete at its own key. So when key was written
// elsewhere, the other version is copied aside to a sibling instead, and
// this one completes in its place (both kept; the names are swapped).
func (f *FS) finishReleased(ctx context.Context, s *stream, stage *os.File, key string, size int64, cond s3backend.Conditions) (s3backend.ObjectInfo, string, error) {
	finishCond := cond
	if s.key != key {
		finishCond = s3backend.Conditions{} // under its old name, moved below
	}
	info, err := s.finish(ctx, stage, size, true, finishCond)
	if errors.Is(err, s3backend.ErrPrecondition) {
		if head, herr := f.be.Head(ctx, key); herr == nil && sameContent(stage, size, head.ETag, f.be.PartSize()) {
			info, err = head, nil // it had landed; the retry of the completion was refused
		}
	}
	for try := 0; errors.Is(err, s3backend.ErrPrecondition) && try < conflictTries; try++ {
		theirs, herr := f.be.Head(ctx, key)
		switch {
		case errors.Is(herr, s3backend.ErrNotFound):
			info, err = s.mp.Complete(ctx, s3backend.Conditions{IfNoneMatch: true})
			continue
		case herr != nil:
			return info, "", herr
		}
		name, nerr := f.conflictName(ctx, key)
		if nerr != nil {
			return info, "", nerr
		}
		if _, cerr := f.be.Copy(ctx, key, name, theirs.Size, nil,
			s3backend.Conditions{IfNoneMatch: true, SourceIfMatch: theirs.ETag}); cerr != nil {
			if errors.Is(cerr, s3backend.ErrPrecondition) {
				continue
			}
			return info, "", cerr
		}
		f.log.Warn("conflict: the file was changed elsewhere while this mount wrote it; the other version was moved beside it",
			"key", key, "other_version_as", name)
		f.noteConflict(key, name)
		f.cache.DropListing(dirOf(name))
		info, err = s.mp.Complete(ctx, s3backend.Conditions{IfMatch: theirs.ETag})
	}
	if err != nil || s.key == key {
		return info, "", err
	}
	move := func(ctx context.Context, name string, c s3backend.Conditions) (s3backend.ObjectInfo, error) {
		return f.be.Copy(ctx, s.key, name, size, nil, c)
	}
	savedAs := key
	info, err = move(ctx, key, cond)
	if errors.Is(err, s3backend.ErrPrecondition) {
		info, savedAs, err = f.keepBoth(ctx, key, move, copyOf(info), nil)
	}
	if err == nil {
		err = f.be.Delete(ctx, s.key)
	}
	return info, savedAs, err
}

// yieldLocked makes the file show the other writer's version (theirs,
// empty if they removed it) after its own data went to savedAs as ours.
// The caller holds mu, and then drops what the kernel caches of the file
// (NotifyContent) without it.
func (f *File) yieldLocked(key, savedAs string, ours cache.Meta, theirs s3backend.ObjectInfo) {
	f.fsys.uploaded(f)
	f.fsys.clock.tickKey(key) // before meta changes: see refresh
	f.fsys.recordUpload(savedAs, ours)
	if theirs.ETag != "" {
		f.meta = decodeMeta(theirs)
		f.fsys.cache.Put(key, f.meta)
	} else {
		f.fsys.cache.Delete(key)
	}
	f.dirty, f.local, f.replaces, f.released = false, false, "", 0
	f.clearMetaPendingLocked()
	f.settleLocked()
	f.dropStageLocked() // this mount's data is the sibling's now
}

// Conflict is one write that found its name changed elsewhere.
type Conflict struct {
	Path    string    `json:"path"`
	SavedAs string    `json:"saved_as"` // the sibling that holds the version that lost the name
	At      time.Time `json:"at"`
}

type conflicts struct {
	mu   sync.Mutex
	list []Conflict
}

// maxConflictsKept bounds the conflicts status keeps (the count goes on).
const maxConflictsKept = 100

func (f *FS) noteConflict(key, savedAs string) {
	c := &f.conflicts
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, Conflict{Path: key, SavedAs: savedAs, At: time.Now()})
	if len(c.list) > maxConflictsKept {
		c.list = c.list[len(c.list)-maxConflictsKept:]
	}
	f.conflictCount.Add(1)
}

// Conflicts returns how many writes found their name changed elsewhere,
// and the latest of them.
func (f *FS) Conflicts() (int64, []Conflict) {
	c := &f.conflicts
	c.mu.Lock()
	defer c.mu.Unlock()
	return f.conflictCount.Load(), append([]Conflict(nil), c.list...)
}

func dirOf(key string) string {
	d, _ := splitKey(key)
	return d
}

// attributesOvertakenLocked ends an attribute change (chmod, chown, times)
// whose object was rewritten elsewhere since this mount read it: the other
// writer's version stands, attributes and all, as a newer write would
// (their content must not get attributes meant for the older one). The
// caller holds mu.
func (f *File) attributesOvertakenLocked(ctx context.Context, key string) syscall.Errno {
	theirs, err := f.fsys.be.Head(ctx, key)
	if err != nil && !errors.Is(err, s3backend.ErrNotFound) {
		return toErrno(f.fsys.log, "setattr", key, err)
	}
	f.fsys.log.Warn("conflict: the file was changed elsewhere before its attribute change was stored; the other version's attributes stand",
		"key", key)
	f.fsys.noteConflict(key, "")
	f.fsys.clock.tickKey(key) // before meta changes: see refresh
	if err == nil {
		f.meta = decodeMeta(theirs)
		f.fsys.cache.Put(key, f.meta)
	}
	f.clearMetaPendingLocked()
	f.settleLocked()
	return 0
}

// stagedAs reports whether an object holds the size bytes of stage with
// the attributes md: a write of them that landed though its answer was
// lost. The same content is not enough: an earlier attempt may have sent
// it with other attributes (a chmod since), and is to be replaced.
func (f *FS) stagedAs(stage io.ReaderAt, size int64, md map[string]string) func(s3backend.ObjectInfo) bool {
	return func(o s3backend.ObjectInfo) bool {
		return o.Size == size && maps.Equal(o.Metadata, md) && sameContent(stage, size, o.ETag, f.be.PartSize())
	}
}

// copyOf reports whether an object is a copy of src (same size and ETag,
// as a CopyObject of a single-part object gives).
func copyOf(src s3backend.ObjectInfo) func(s3backend.ObjectInfo) bool {
	return func(o s3backend.ObjectInfo) bool {
		return src.ETag != "" && o.ETag == src.ETag && o.Size == src.Size
	}
}

// contentETag is the ETag S3 gives an upload of r's size bytes: one PUT
// up to partSize, a multipart upload above it.
func contentETag(r io.ReaderAt, size, partSize int64) string {
	if size <= partSize {
		return md5Hex(r, 0, size)
	}
	return multipartETag(r, size, partSize)
}

// md5Hex is the MD5 of n bytes of r from off, in hex ("" if unreadable).
func md5Hex(r io.ReaderAt, off, n int64) string {
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, off, n)); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// multipartETag is a multipart upload's ETag for r's size bytes in parts
// of PartSizeFor(size, partSize): the MD5 of the parts' MD5s, "-", the count.
func multipartETag(r io.ReaderAt, size, partSize int64) string {
	partSize = s3backend.PartSizeFor(size, partSize)
	all := md5.New()
	n := 0
	for off := int64(0); off < size; off += partSize {
		sum, err := hex.DecodeString(md5Hex(r, off, min(partSize, size-off)))
		if err != nil || len(sum) == 0 {
			return ""
		}
		all.Write(sum)
		n++
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(all.Sum(nil)), n)
}

// maxMaybeLanded bounds the unanswered attempts a file remembers.
const maxMaybeLanded = 4

// mayHaveLandedLocked records a write to the file's key that failed
// without an answer and would have left the version etag there: its own
// upload, or a move onto it. A later write of the file refused because
// that version is there replaces it instead of going beside it.
func (f *File) mayHaveLandedLocked(etag string) {
	if etag == "" || slices.Contains(f.maybeLanded, etag) {
		return
	}
	f.maybeLanded = append(f.maybeLanded, etag)
	if len(f.maybeLanded) > maxMaybeLanded {
		f.maybeLanded = f.maybeLanded[1:]
	}
}
