package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/s3drive/s3drive/fs/journal"
	"github.com/s3drive/s3drive/s3backend"
)

// Recovery is what Recover found a previous run left, and did with it.
type Recovery struct {
	Uploaded   []string `json:"uploaded"`   // keys uploaded as the previous run meant to
	Conflicted []string `json:"conflicted"` // keys whose data went to a conflicted-copy sibling
	Kept       []string `json:"kept"`       // paths in lost+found: data never closed, or unnamed
	Aborted    int      `json:"aborted"`    // multipart uploads left open, now aborted
	Pending    int      `json:"pending"`    // items the server did not take yet: retried in the background
}

// lostFound is where data that must not be uploaded is kept for the user.
func (f *FS) lostFound() string { return filepath.Join(filepath.Dir(f.opts.StagingDir), "lost+found") }

// Recover finishes what a previous run of this mount left behind, as its
// journal and staging directory tell: it aborts the multipart uploads it
// left open, uploads data a close or fsync asked for (to a sibling
// "conflicted copy" name if the object changed in S3 since the version the
// data was based on), and moves data that was never closed, or that no
// entry names, to lost+found, uploading none of it. Every file is logged.
// Call it after New and before mounting; what the server does not take
// now is retried in the background.
func (f *FS) Recover(ctx context.Context) (Recovery, error) {
	var rec Recovery
	ups, err := f.journal.Uploads()
	if err != nil {
		return rec, err
	}
	var later []func(context.Context) error
	for _, u := range ups {
		abort := func(ctx context.Context) error {
			if err := f.be.AbortUpload(ctx, u.Key, u.ID); err != nil {
				return err
			}
			f.journal.UploadEnded(u.Key, u.ID)
			f.log.Info("recovery: aborted a multipart upload a previous run left open", "key", u.Key)
			return nil
		}
		if abort(ctx) == nil {
			rec.Aborted++
		} else {
			later = append(later, abort)
		}
	}
	entries, err := f.journal.Entries()
	if err != nil {
		return rec, err
	}
	named := map[string]bool{}
	var closed []closedEntry // to upload
	for _, e := range entries {
		named[e.Stage] = true
		stage := filepath.Join(f.opts.StagingDir, e.Stage)
		st, err := os.Stat(stage)
		if err != nil {
			f.journal.Forget(e.Stage) // uploaded or discarded before the end
			continue
		}
		switch {
		case e.Clean:
			os.Remove(stage)
			f.journal.Forget(e.Stage)
		case e.Closed && e.Released == 0 && st.Size() != e.Size:
			// The journal outlived the data (power lost before the
			// staging file reached the disk): not the file it names.
			if kept, err := f.keep(stage, e.Key, fmt.Sprintf("%d bytes where the journal says %d: not uploaded", st.Size(), e.Size)); err == nil {
				rec.Kept = append(rec.Kept, kept)
				f.journal.Forget(e.Stage)
			}
		case !e.Closed || e.Released > 0:
			why := "still being written when the previous run ended (never closed): not uploaded"
			if e.Released > 0 {
				why = "partly uploaded already and released from disk to make room: cannot be finished"
			}
			if kept, err := f.keep(stage, e.Key, why); err == nil {
				rec.Kept = append(rec.Kept, kept)
				f.journal.Forget(e.Stage)
			}
		default:
			closed = append(closed, closedEntry{e, stage})
		}
	}
	// Several keys at once (a write-back queue a crash left may hold
	// thousands); the entries of one key, oldest first.
	slices.SortFunc(closed, func(a, b closedEntry) int { return a.entry.Updated.Compare(b.entry.Updated) })
	byKey := map[string][]closedEntry{}
	var keys []string
	for _, c := range closed {
		if byKey[c.entry.Key] == nil {
			keys = append(keys, c.entry.Key)
		}
		byKey[c.entry.Key] = append(byKey[c.entry.Key], c)
	}
	var mu sync.Mutex
	parallel(recoverParallel, keys, nil, func(key string) {
		for _, c := range byKey[key] {
			target, err := f.recoverUpload(ctx, c.entry, c.stage)
			mu.Lock()
			switch {
			case err != nil:
				f.log.Warn("recovery: upload failed; retrying in the background", "key", c.entry.Key, "err", err)
				later = append(later, func(ctx context.Context) error {
					_, err := f.recoverUpload(ctx, c.entry, c.stage)
					return err
				})
			case target != c.entry.Key:
				rec.Conflicted = append(rec.Conflicted, target)
			default:
				rec.Uploaded = append(rec.Uploaded, target)
			}
			mu.Unlock()
		}
	})
	slices.Sort(rec.Uploaded)
	slices.Sort(rec.Conflicted)
	left, _ := filepath.Glob(filepath.Join(f.opts.StagingDir, "stage-*"))
	for _, stage := range left {
		if !named[filepath.Base(stage)] {
			if kept, err := f.keep(stage, "", "no journal entry names it"); err == nil {
				rec.Kept = append(rec.Kept, kept)
			}
		}
	}
	rec.Pending = len(later)
	if len(later) > 0 {
		go f.retryRecovery(later)
	}
	return rec, nil
}

// closedEntry is a journal entry whose data a close or fsync asked for,
// and its staging file.
type closedEntry struct {
	entry journal.Entry
	stage string
}

// recoverParallel is how many files recovery uploads at once.
const recoverParallel = 16

func (f *FS) retryRecovery(items []func(context.Context) error) {
	for delay := firstRetry; len(items) > 0; delay = min(delay*2, maxRetryDelay) {
		time.Sleep(delay)
		var still []func(context.Context) error
		for _, item := range items {
			if item(context.Background()) != nil {
				still = append(still, item)
			}
		}
		items = still
	}
}

// recoverUpload uploads a closed entry's data: to its key if S3 still
// holds the version it was based on (or, for a new file, nothing), else
// to a conflicted-copy sibling. It returns the key written.
func (f *FS) recoverUpload(ctx context.Context, e journal.Entry, stage string) (string, error) {
	file, err := os.Open(stage)
	if err != nil {
		return "", err
	}
	defer file.Close()
	info, err := f.be.Head(ctx, e.Key)
	if err != nil && !errors.Is(err, s3backend.ErrNotFound) {
		return "", err
	}
	sameData := err == nil && info.Size == e.Size && sameContent(file, e.Size, info.ETag, f.be.PartSize())
	if sameData && maps.Equal(info.Metadata, e.Metadata) {
		// Uploaded before the end; only the journal did not hear of it.
		f.finishRecovered(e, stage)
		f.log.Info("recovery: already in S3", "key", e.Key)
		return e.Key, nil
	}
	// The write is conditional on the version the data was based on, as
	// the mount's own are (conflict.go).
	cond := s3backend.Conditions{IfMatch: e.Base, IfNoneMatch: e.Base == ""}
	switch {
	case f.opts.Overwrite:
		cond = s3backend.Conditions{}
	case sameData:
		// Uploaded before the end with attributes changed since: this
		// write replaces that one.
		cond = s3backend.Conditions{IfMatch: info.ETag}
	}
	write := func(ctx context.Context, name string, c s3backend.Conditions) (s3backend.ObjectInfo, error) {
		return f.be.Upload(ctx, name, file, e.Size, s3backend.PutOptions{ContentType: e.ContentType, Metadata: e.Metadata, Cond: c})
	}
	target := e.Key
	up, err := write(ctx, e.Key, cond)
	if errors.Is(err, s3backend.ErrPrecondition) {
		up, target, err = f.keepBoth(ctx, e.Key, write, f.stagedAs(file, e.Size, e.Metadata),
			func(etag string) bool { return slices.Contains(e.Maybe, etag) })
	}
	if err != nil {
		return "", err
	}
	m := decodeMeta(s3backend.ObjectInfo{Size: e.Size, ETag: up.ETag, Metadata: e.Metadata})
	f.recordUpload(target, m)
	f.finishRecovered(e, stage)
	if target != e.Key {
		f.log.Warn("recovery: the object changed in S3 since this data was based on it; uploaded beside it",
			"key", e.Key, "as", target, "bytes", e.Size)
	} else {
		f.log.Info("recovery: uploaded data a previous run could not", "key", e.Key, "bytes", e.Size)
	}
	return target, nil
}

func (f *FS) finishRecovered(e journal.Entry, stage string) {
	os.Remove(stage)
	f.journal.Forget(e.Stage)
}

// keep moves a staging file to lost+found, named after its key.
func (f *FS) keep(stage, key, why string) (string, error) {
	dir := f.lostFound()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	name := "unnamed"
	if key != "" {
		name = strings.ReplaceAll(key, "/", "%2F")
	}
	dst := filepath.Join(dir, time.Now().UTC().Format("20060102T150405Z")+"-"+filepath.Base(stage)+"-"+name)
	if len(filepath.Base(dst)) > 255 {
		dst = dst[:len(dst)-(len(filepath.Base(dst))-255)]
	}
	if err := os.Rename(stage, dst); err != nil {
		f.log.Error("recovery: could not move staged data to lost+found; left in place", "staging", stage, "err", err)
		return "", err
	}
	f.log.Warn("recovery: data kept in lost+found, "+why, "key", key, "path", dst)
	return dst, nil
}

// conflictName is a free sibling name for data that must not replace
// key's object: "report (conflicted copy 2026-12-05 14.05 host).pdf".
func (f *FS) conflictName(ctx context.Context, key string) (string, error) {
	dir, name := path.Split(key)
	ext := path.Ext(name)
	if ext == name {
		ext = "" // a dotfile: ".profile" has no extension
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "s3drive"
	}
	stem := fmt.Sprintf("%s (conflicted copy %s %s", strings.TrimSuffix(name, ext), time.Now().Format("2006-01-02 15.04"), host)
	for i := 1; ; i++ {
		candidate := dir + stem + ")" + ext
		if i > 1 {
			candidate = fmt.Sprintf("%s%s %d)%s", dir, stem, i, ext)
		}
		_, err := f.be.Head(ctx, candidate)
		if errors.Is(err, s3backend.ErrNotFound) {
			return candidate, nil
		}
		if err != nil {
			return "", err
		}
	}
}

// sameContent reports whether etag is S3's ETag of r's size bytes, as one
// PUT (their MD5) or as a multipart upload in parts of partSize.
func sameContent(r io.ReaderAt, size int64, etag string, partSize int64) bool {
	if _, _, multipart := strings.Cut(etag, "-"); !multipart {
		return md5Hex(r, 0, size) == etag
	}
	return multipartETag(r, size, partSize) == etag
}
