package fs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/s3drive/s3drive/s3backend"
)

const (
	// deleteDelay is how long a queued delete waits for others to join
	// its batch, unless deleteMinBatch are queued. Other clients see this
	// mount's changes up to the metadata TTL (1 s by default) late anyway;
	// at 50 ms an rsync run sent a batch every 10 files.
	deleteDelay = time.Second
	// deleteBatch is DeleteObjects' limit.
	deleteBatch = 1000
	// deleteParallel is how many batches of files go at once, and
	// deleteMinBatch the smallest batch split off for that; as many queued
	// deletes go without waiting for the window.
	deleteParallel = 4
	deleteMinBatch = 250
	// deleteRetry spaces retries of a batch that failed.
	deleteRetry = 5 * time.Second
)

// removal is one queued delete: the version of the key it removes (its
// ETag, sent as If-Match so that a version written since, by anyone,
// survives), and when it was queued, so that a write that began before it
// cannot cancel it.
type removal struct {
	etag string
	// tombstone: a folder without a marker. Nothing is sent for it; it
	// hides the folder's prefix from listings until the batch that
	// removes the folder's last files is confirmed.
	tombstone bool
	gen       uint64
	// maybe are versions that may be there instead of etag: uploads of
	// the file that failed without an answer. A HEAD at send time tells
	// which, if any, to delete.
	maybe []string
}

// deferredDeletes is the backend as the filesystem sees it: deletes of
// files (unlink, the old name of a rename) are queued and sent in batches
// of up to 1,000 keys per DeleteObjects, instead of one request per file,
// which is what makes rm -rf and rsync's renames cheap.
//
// Its guarantees, which the stress test in integration checks:
//   - Until S3 confirms a queued removal, the key is gone for this mount:
//     HEAD, GET and listings (objects and folder prefixes) do not show it,
//     including answers to requests sent before the removal was queued
//     and answered after it was confirmed.
//   - A queued removal never deletes a version written after it was
//     queued. This mount's own writes are ordered against it: a write of
//     a key waits for a batch in flight that holds the key, a batch skips
//     keys being written, and a write that succeeds cancels the removal.
//     Other clients' writes are protected by the ETag condition, where the
//     server honours it.
//
// rmdir, folder renames and unmount send the queue first.
type deferredDeletes struct {
	s3backend.Backend
	log   *slog.Logger
	delay time.Duration // deleteDelay

	mu       sync.Mutex // protects the following
	pending  map[string]removal
	gen      uint64          // counts removals queued
	inFlight map[string]bool // keys of the batch being sent
	writing  map[string]int  // keys with a write in flight
	// writeWaits counts writes that waited for a batch holding their key.
	writeWaits int
	timer      *time.Timer
	sending    chan struct{} // closed when the batch being sent is done
	draining   bool          // drain is running
	failing    bool          // the last send failed: only its retry sends
	// Confirmed removals, for the reads in flight when they were
	// confirmed: seq counts confirmations, gone holds each key's, and
	// reads counts the reads in flight by the seq they started at.
	seq   uint64
	gone  map[string]uint64
	reads map[uint64]int
	// unconditional: the server refused If-Match on deletes; they go
	// without it (logged once).
	unconditional bool
}

func newDeferredDeletes(be s3backend.Backend, log *slog.Logger) *deferredDeletes {
	return &deferredDeletes{Backend: be, log: log, delay: deleteDelay, pending: map[string]removal{},
		inFlight: map[string]bool{}, writing: map[string]int{}, gone: map[string]uint64{}, reads: map[uint64]int{}}
}

// DeleteLater queues key for deletion; etag names the version to delete
// ("" for whatever S3 holds). With maybe, the version to delete is
// whichever of etag (unless "") and maybe S3 holds when the batch goes.
func (d *deferredDeletes) DeleteLater(key, etag string, maybe ...string) {
	d.queue(key, removal{etag: etag, maybe: maybe})
}

// RemoveFolder queues the removal of a folder whose files are removed
// (queued or gone): its marker if it has one, else a tombstone that hides
// the folder until its files' removals are confirmed.
func (d *deferredDeletes) RemoveFolder(dirKey string, hasMarker bool) {
	d.queue(dirKey, removal{tombstone: !hasMarker})
}

func (d *deferredDeletes) queue(key string, r removal) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	r.gen = d.gen
	d.pending[key] = r
	if d.timer == nil {
		d.timer = time.AfterFunc(d.delay, func() { d.Flush(context.Background()) })
	}
	if len(d.pending) >= deleteMinBatch && !d.draining && !d.failing {
		d.draining = true
		go d.drain()
	}
}

// drain sends queued deletes while a batch's worth waits: the server
// deletes the first files of an rm -rf while rm is still removing the
// rest (rm -rf of 1,168 files, then sync: 1.1 s without it, 0.84–1.06 s with).
func (d *deferredDeletes) drain() {
	for {
		sent, err := d.sendQueued(context.Background(), deleteMinBatch)
		if sent && err == nil {
			continue
		}
		d.mu.Lock()
		if err == nil && sent && len(d.pending) >= deleteMinBatch {
			// Queued since sendQueued looked.
			d.mu.Unlock()
			continue
		}
		d.draining = false
		d.mu.Unlock()
		return
	}
}

// queued is one removal taken from the queue for a batch.
type queued struct {
	key string
	removal
}

// send deletes a batch, children first: files in chunks sent
// deleteParallel at a time (a server deletes one chunk's keys one after
// another: rm -rf of 1,168 files took 15% less time), then folder markers
// in order, deepest first. It returns the keys that are settled (deleted,
// or kept by S3 because they changed) and the first error.
func (d *deferredDeletes) send(ctx context.Context, batch []queued) (settled []string, kept []string, err error) {
	var files, markers []queued
	for _, q := range batch {
		if strings.HasSuffix(q.key, "/") {
			markers = append(markers, q)
		} else {
			files = append(files, q)
		}
	}
	var mu sync.Mutex // protects the results
	removeSome := func(chunk []queued) {
		var removals []s3backend.Removal // tombstones need no request
		var keptHere []string
		var errHere error
		for _, q := range chunk {
			switch {
			case q.tombstone:
			case len(q.maybe) > 0:
				etag, other, err := heldVersion(ctx, d.Backend, q.key, q.etag, q.maybe)
				switch {
				case err != nil:
					errHere = cmp.Or(errHere, err)
				case other:
					keptHere = append(keptHere, q.key)
				case etag == "":
					// Nothing there: settled.
				default:
					removals = append(removals, s3backend.Removal{Key: q.key, ETag: etag})
				}
			default:
				removals = append(removals, s3backend.Removal{Key: q.key, ETag: q.etag})
			}
		}
		if len(removals) > 0 && errHere == nil {
			var keptNow []string
			keptNow, errHere = d.remove(ctx, removals)
			keptHere = append(keptHere, keptNow...)
		}
		mu.Lock()
		defer mu.Unlock()
		if errHere != nil {
			err = cmp.Or(err, errHere)
			return
		}
		kept = append(kept, keptHere...)
		for _, q := range chunk {
			settled = append(settled, q.key)
		}
	}
	size := min(deleteBatch, max(deleteMinBatch, (len(files)+deleteParallel-1)/deleteParallel))
	parallel(deleteParallel, slices.Collect(slices.Chunk(files, size)), nil, removeSome)
	if err != nil {
		return settled, kept, err // the markers' folders may not be empty
	}
	for chunk := range slices.Chunk(markers, deleteBatch) {
		removeSome(chunk)
	}
	return settled, kept, err
}

// heldVersion is which of etag (unless "") and maybe S3 holds at key, by
// one HEAD: the one a removal with alternatives deletes. It is "" when
// the key is gone; other says S3 holds a version written elsewhere.
func heldVersion(ctx context.Context, be s3backend.Backend, key, etag string, maybe []string) (held string, other bool, err error) {
	info, err := be.Head(ctx, key)
	switch {
	case errors.Is(err, s3backend.ErrNotFound):
		return "", false, nil
	case err != nil:
		return "", false, err
	case (etag != "" && info.ETag == etag) || slices.Contains(maybe, info.ETag):
		return info.ETag, false, nil
	}
	return "", true, nil
}

// remove sends removals with their ETag conditions, or without them once
// the server has refused one.
func (d *deferredDeletes) remove(ctx context.Context, removals []s3backend.Removal) ([]string, error) {
	d.mu.Lock()
	unconditional := d.unconditional
	d.mu.Unlock()
	if unconditional {
		removals = withoutETags(removals)
	}
	kept, err := d.Backend.Remove(ctx, removals)
	if errors.Is(err, s3backend.ErrNotImplemented) && !unconditional && slices.ContainsFunc(removals,
		func(r s3backend.Removal) bool { return r.ETag != "" }) {
		refused := err
		kept, err = d.Backend.Remove(ctx, withoutETags(removals))
		if err == nil {
			d.mu.Lock()
			d.unconditional = true
			d.mu.Unlock()
			d.log.Warn("the server refuses conditional deletes (If-Match); removals go without them, so a file "+
				"another client rewrites just before this mount's queued removal of it is deleted", "err", refused)
		}
	}
	return kept, err
}

func withoutETags(removals []s3backend.Removal) []s3backend.Removal {
	out := slices.Clone(removals)
	for i := range out {
		out[i].ETag = ""
	}
	return out
}

func (d *deferredDeletes) isDraining() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.draining
}

// queued is how many removals wait to be sent.
func (d *deferredDeletes) queued() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

func (d *deferredDeletes) isPending(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.pending[key]
	return ok
}

// Flush sends every queued delete now and returns once they are done.
// Keys being written are left queued: their write settles them.
func (d *deferredDeletes) Flush(ctx context.Context) error {
	for {
		if sent, err := d.sendQueued(ctx, 1); !sent || err != nil {
			return err
		}
	}
}

// sendQueued waits for the batch being sent, if any, then sends every
// queued key not being written if at least least (≥ 1) are, and reports
// whether it sent.
func (d *deferredDeletes) sendQueued(ctx context.Context, least int) (bool, error) {
	d.mu.Lock()
	for d.sending != nil {
		// One batch at a time.
		wait := d.sending
		d.mu.Unlock()
		<-wait
		d.mu.Lock()
	}
	batch := make([]queued, 0, len(d.pending))
	for k, r := range d.pending {
		if d.writing[k] == 0 {
			batch = append(batch, queued{k, r})
		}
	}
	if len(batch) < least {
		d.mu.Unlock()
		return false, nil
	}
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	// Children before their parents ("a/b" sorts after "a/"): servers
	// that keep folders as directories, such as versitygw, refuse to
	// delete a marker whose folder still holds something.
	slices.SortFunc(batch, func(a, b queued) int { return strings.Compare(b.key, a.key) })
	for _, q := range batch {
		d.inFlight[q.key] = true
	}
	done := make(chan struct{})
	d.sending = done
	d.mu.Unlock()

	settled, kept, err := d.send(context.WithoutCancel(ctx), batch)

	d.mu.Lock()
	gens := make(map[string]uint64, len(batch))
	for _, q := range batch {
		gens[q.key] = q.gen
		delete(d.inFlight, q.key)
	}
	var confirmed []string
	for _, k := range settled {
		if r, ok := d.pending[k]; ok && r.gen == gens[k] {
			delete(d.pending, k)
			confirmed = append(confirmed, k)
		}
	}
	d.confirmLocked(confirmed)
	d.sending = nil
	close(done)
	d.failing = err != nil
	if len(d.pending) > 0 && d.timer == nil {
		// Keys skipped while being written, queued meanwhile, or failed.
		wait := d.delay
		if err != nil {
			wait = deleteRetry
		}
		d.timer = time.AfterFunc(wait, func() { d.Flush(context.Background()) })
	}
	left := len(d.pending)
	d.mu.Unlock()
	if len(kept) > 0 {
		d.log.Warn("removal skipped: the object changed in S3 since this mount removed it; the newer version stays",
			"keys", kept)
	}
	if err != nil {
		d.log.Error("deleting removed files failed; retrying", "keys", left, "err", err)
		return true, fmt.Errorf("%d removed file(s) still in S3: %w", left, err)
	}
	return true, nil
}

// confirmLocked records keys whose removal S3 confirmed, for the reads in
// flight: an answer to a request sent before then may still show them.
func (d *deferredDeletes) confirmLocked(keys []string) {
	if len(keys) == 0 || len(d.reads) == 0 {
		return
	}
	d.seq++
	for _, k := range keys {
		d.gone[k] = d.seq
	}
}

// readStart registers a read (HEAD, GET, LIST) about to be sent; readEnd
// takes its seq back once its answer has been filtered.
func (d *deferredDeletes) readStart() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads[d.seq]++
	return d.seq
}

func (d *deferredDeletes) readEnd(seq uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reads[seq]--; d.reads[seq] == 0 {
		delete(d.reads, seq)
	}
	if len(d.reads) == 0 {
		clear(d.gone)
		return
	}
	if len(d.gone) > 4096 {
		oldest := slices.Min(slices.Collect(maps.Keys(d.reads)))
		for k, s := range d.gone {
			if s <= oldest {
				delete(d.gone, k)
			}
		}
	}
}

// hiddenLocked reports whether key is removed for a read that started at
// seq.
func (d *deferredDeletes) hiddenLocked(key string, seq uint64) bool {
	if _, ok := d.pending[key]; ok {
		return true
	}
	s, ok := d.gone[key]
	return ok && s > seq
}

func (d *deferredDeletes) hidden(key string, seq uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hiddenLocked(key, seq)
}

// beginWrite registers a write of key (upload, copy, multipart completion)
// about to be sent, once no batch in flight holds the key; endWrite reports
// its outcome. A write that succeeded replaced whatever a removal queued
// before it meant to delete, so that removal is dropped.
//
// A write that believes key free (If-None-Match) while a removal of it is
// still queued takes the removal's place: it is sent as replacing the
// version the removal meant to delete (If-Match its ETag), and a version
// written elsewhere since fails it, as it would fail the removal.
func (d *deferredDeletes) beginWrite(key string, cond *s3backend.Conditions) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.inFlight[key] {
		d.writeWaits++
		wait := d.sending
		d.mu.Unlock()
		<-wait
		d.mu.Lock()
	}
	if r, queued := d.pending[key]; queued && cond != nil && cond.IfNoneMatch && !r.tombstone {
		cond.IfNoneMatch, cond.IfMatch = false, r.etag
	}
	d.writing[key]++
	return d.gen
}

func (d *deferredDeletes) endWrite(key string, began uint64, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writing[key]--; d.writing[key] == 0 {
		delete(d.writing, key)
	}
	if r, queued := d.pending[key]; ok && queued && r.gen <= began {
		delete(d.pending, key)
	}
}

func (d *deferredDeletes) Head(ctx context.Context, key string) (s3backend.ObjectInfo, error) {
	seq := d.readStart()
	defer d.readEnd(seq)
	if d.hidden(key, seq) {
		return s3backend.ObjectInfo{}, fmt.Errorf("HEAD %q: removed: %w", key, s3backend.ErrNotFound)
	}
	info, err := d.Backend.Head(ctx, key)
	if err == nil && d.hidden(key, seq) {
		return s3backend.ObjectInfo{}, fmt.Errorf("HEAD %q: removed: %w", key, s3backend.ErrNotFound)
	}
	return info, err
}

func (d *deferredDeletes) Get(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, error) {
	seq := d.readStart()
	defer d.readEnd(seq)
	if d.hidden(key, seq) {
		return nil, fmt.Errorf("GET %q: removed: %w", key, s3backend.ErrNotFound)
	}
	rc, err := d.Backend.Get(ctx, key, off, length, ifMatch)
	if err == nil && d.hidden(key, seq) {
		rc.Close()
		return nil, fmt.Errorf("GET %q: removed: %w", key, s3backend.ErrNotFound)
	}
	return rc, err
}

// List hides removed keys, and folders removed whole (their marker's or
// tombstone's key is the common prefix).
func (d *deferredDeletes) List(ctx context.Context, prefix, delimiter, token string, maxKeys int) (s3backend.ListPage, error) {
	seq := d.readStart()
	defer d.readEnd(seq)
	page, err := d.Backend.List(ctx, prefix, delimiter, token, maxKeys)
	if err != nil {
		return page, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.pending) > 0 || len(d.gone) > 0 {
		page.Objects = slices.DeleteFunc(page.Objects, func(o s3backend.ObjectInfo) bool { return d.hiddenLocked(o.Key, seq) })
		page.Prefixes = slices.DeleteFunc(page.Prefixes, func(p string) bool { return d.hiddenLocked(p, seq) })
	}
	return page, nil
}

func (d *deferredDeletes) Upload(ctx context.Context, key string, r io.ReaderAt, size int64, opts s3backend.PutOptions) (s3backend.ObjectInfo, error) {
	began := d.beginWrite(key, &opts.Cond)
	info, err := d.Backend.Upload(ctx, key, r, size, opts)
	d.endWrite(key, began, err == nil)
	return info, err
}

func (d *deferredDeletes) StartMultipart(ctx context.Context, key string, opts s3backend.PutOptions) (s3backend.Multipart, error) {
	mp, err := d.Backend.StartMultipart(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	return &orderedMultipart{Multipart: mp, d: d, key: key}, nil
}

// orderedMultipart is a multipart upload whose completion — the moment the
// object appears — is ordered against queued removals like any write.
type orderedMultipart struct {
	s3backend.Multipart
	d   *deferredDeletes
	key string
}

func (m *orderedMultipart) Complete(ctx context.Context, cond s3backend.Conditions) (s3backend.ObjectInfo, error) {
	began := m.d.beginWrite(m.key, &cond)
	info, err := m.Multipart.Complete(ctx, cond)
	m.d.endWrite(m.key, began, err == nil)
	return info, err
}

func (d *deferredDeletes) Copy(ctx context.Context, src, dst string, size int64, opts *s3backend.PutOptions, cond s3backend.Conditions) (s3backend.ObjectInfo, error) {
	began := d.beginWrite(dst, &cond)
	info, err := d.Backend.Copy(ctx, src, dst, size, opts, cond)
	d.endWrite(dst, began, err == nil)
	return info, err
}

// Delete sends at once (a folder marker, a batch of a folder move), and
// drops those keys from the queue.
func (d *deferredDeletes) Delete(ctx context.Context, keys ...string) error {
	if err := d.Backend.Delete(ctx, keys...); err != nil {
		return err
	}
	d.mu.Lock()
	for _, k := range keys {
		delete(d.pending, k)
	}
	d.confirmLocked(keys)
	d.mu.Unlock()
	return nil
}
