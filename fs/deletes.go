package fs

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
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

// deferredDeletes is the backend as the filesystem sees it: deletes of
// files (unlink, the old name of a rename) are queued and sent in batches
// of up to 1,000 keys per DeleteObjects, instead of one request per file,
// which is what makes rm -rf and rsync's renames cheap. Until a queued
// delete is sent, the key is already gone for this mount: HEAD, GET and
// listings do not show it. A write to a queued key (a file recreated under
// the same name) sends its delete first, so the delete can never remove
// the new version. rmdir, folder renames and unmount send the queue first.
type deferredDeletes struct {
	s3backend.Backend
	log   *slog.Logger
	delay time.Duration // deleteDelay

	mu       sync.Mutex // protects the following
	pending  map[string]bool
	timer    *time.Timer
	sending  chan struct{} // closed when the batch being sent is done
	draining bool          // drain is running
	failing  bool          // the last send failed: only its retry sends
}

func newDeferredDeletes(be s3backend.Backend, log *slog.Logger) *deferredDeletes {
	return &deferredDeletes{Backend: be, log: log, delay: deleteDelay, pending: map[string]bool{}}
}

// DeleteLater queues keys for deletion.
func (d *deferredDeletes) DeleteLater(keys ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		d.pending[k] = true
	}
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
		if err == nil && len(d.pending) >= deleteMinBatch {
			// Queued since sendQueued looked.
			d.mu.Unlock()
			continue
		}
		d.draining = false
		d.mu.Unlock()
		return
	}
}

// send deletes keys, sorted children first: files in batches sent
// deleteParallel at a time (a server deletes one batch's keys one after
// another: rm -rf of 1,168 files took 15% less time), then folder markers
// in order, deepest first.
func (d *deferredDeletes) send(ctx context.Context, keys []string) error {
	var files, markers []string
	for _, k := range keys {
		if strings.HasSuffix(k, "/") {
			markers = append(markers, k)
		} else {
			files = append(files, k)
		}
	}
	var (
		errMu    sync.Mutex
		firstErr error
	)
	deleteSome := func(batch []string) {
		if err := d.Delete(ctx, batch...); err != nil {
			errMu.Lock()
			firstErr = cmp.Or(firstErr, err)
			errMu.Unlock()
		}
	}
	size := min(deleteBatch, max(deleteMinBatch, (len(files)+deleteParallel-1)/deleteParallel))
	parallel(deleteParallel, slices.Collect(slices.Chunk(files, size)), nil, deleteSome)
	if firstErr != nil {
		return firstErr // the markers' folders may not be empty
	}
	for batch := range slices.Chunk(markers, deleteBatch) {
		deleteSome(batch)
	}
	return firstErr
}

func (d *deferredDeletes) isDraining() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.draining
}

func (d *deferredDeletes) isPending(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pending[key]
}

// Flush sends every queued delete now and returns once they are done.
func (d *deferredDeletes) Flush(ctx context.Context) error {
	for {
		if sent, err := d.sendQueued(ctx, 1); !sent || err != nil {
			return err
		}
	}
}

// sendQueued waits for the batch being sent, if any, then sends every
// queued key if at least least (≥ 1) are queued, and reports whether it
// sent.
func (d *deferredDeletes) sendQueued(ctx context.Context, least int) (bool, error) {
	d.mu.Lock()
	for d.sending != nil {
		// One batch at a time.
		wait := d.sending
		d.mu.Unlock()
		<-wait
		d.mu.Lock()
	}
	if len(d.pending) < least {
		d.mu.Unlock()
		return false, nil
	}
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	keys := make([]string, 0, len(d.pending))
	for k := range d.pending {
		keys = append(keys, k)
	}
	// Children before their parents ("a/b" sorts after "a/"): servers
	// that keep folders as directories, such as versitygw, refuse to
	// delete a marker whose folder still holds something.
	slices.Sort(keys)
	slices.Reverse(keys)
	done := make(chan struct{})
	d.sending = done
	d.mu.Unlock()

	err := d.send(context.WithoutCancel(ctx), keys)

	d.mu.Lock()
	d.sending = nil
	close(done)
	d.failing = err != nil
	if err != nil && len(d.pending) > 0 && d.timer == nil {
		d.timer = time.AfterFunc(deleteRetry, func() { d.Flush(context.Background()) })
	}
	left := len(d.pending)
	d.mu.Unlock()
	if err != nil {
		d.log.Error("deleting removed files failed; retrying", "keys", left, "err", err)
		return true, fmt.Errorf("%d removed file(s) still in S3: %w", left, err)
	}
	return true, nil
}

// settle sends key's queued delete, if any, before a new version of key
// is written.
func (d *deferredDeletes) settle(ctx context.Context, key string) error {
	d.mu.Lock()
	queued := d.pending[key]
	d.mu.Unlock()
	if !queued {
		return nil
	}
	return d.Delete(ctx, key)
}

func (d *deferredDeletes) Head(ctx context.Context, key string) (s3backend.ObjectInfo, error) {
	if d.isPending(key) {
		return s3backend.ObjectInfo{}, fmt.Errorf("HEAD %q: removed: %w", key, s3backend.ErrNotFound)
	}
	return d.Backend.Head(ctx, key)
}

func (d *deferredDeletes) Get(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, error) {
	if d.isPending(key) {
		return nil, fmt.Errorf("GET %q: removed: %w", key, s3backend.ErrNotFound)
	}
	return d.Backend.Get(ctx, key, off, length, ifMatch)
}

// List hides queued keys.
func (d *deferredDeletes) List(ctx context.Context, prefix, delimiter, token string, maxKeys int) (s3backend.ListPage, error) {
	page, err := d.Backend.List(ctx, prefix, delimiter, token, maxKeys)
	if err != nil {
		return page, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.pending) > 0 {
		page.Objects = slices.DeleteFunc(page.Objects, func(o s3backend.ObjectInfo) bool { return d.pending[o.Key] })
	}
	return page, nil
}

func (d *deferredDeletes) Upload(ctx context.Context, key string, r io.ReaderAt, size int64, opts s3backend.PutOptions) (s3backend.ObjectInfo, error) {
	if err := d.settle(ctx, key); err != nil {
		return s3backend.ObjectInfo{}, err
	}
	return d.Backend.Upload(ctx, key, r, size, opts)
}

func (d *deferredDeletes) StartMultipart(ctx context.Context, key string, opts s3backend.PutOptions) (s3backend.Multipart, error) {
	if err := d.settle(ctx, key); err != nil {
		return nil, err
	}
	return d.Backend.StartMultipart(ctx, key, opts)
}

func (d *deferredDeletes) Copy(ctx context.Context, src, dst string, size int64, opts *s3backend.PutOptions) (s3backend.ObjectInfo, error) {
	if err := d.settle(ctx, dst); err != nil {
		return s3backend.ObjectInfo{}, err
	}
	return d.Backend.Copy(ctx, src, dst, size, opts)
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
	d.mu.Unlock()
	return nil
}
