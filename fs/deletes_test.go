package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/s3drive/s3drive/s3backend"
)

// TestDeletesDrainWhileQueued: once a batch's worth of removals is queued
// they go without waiting for the window, so the server works while rm
// is still removing; fewer wait for the window, and a failing server is
// not retried for every removal queued meanwhile.
func TestDeletesDrainWhileQueued(t *testing.T) {
	mem := s3backend.NewMemory()
	var keys []string
	for i := range 2 * deleteMinBatch {
		k := fmt.Sprintf("f%04d", i)
		mem.PutObject(k, []byte("x"), nil)
		keys = append(keys, k)
	}
	d := newDeferredDeletes(mem, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.delay = time.Hour // only the drain can send

	deleteLater(d, keys[:deleteMinBatch-1]...)
	if c := mem.Counters()[s3backend.OpDeleteBatch]; c != 0 || d.draining {
		t.Fatalf("%d keys queued: %d DeleteObjects, draining %v; want them left to the window", deleteMinBatch-1, c, d.draining)
	}
	deleteLater(d, keys[deleteMinBatch-1])
	waitUntil(t, "a full batch sent", func() bool { return !d.isPending(keys[0]) && !d.isDraining() })
	if got := len(mem.Keys()); got != deleteMinBatch {
		t.Errorf("%d objects left, want the %d never queued", got, deleteMinBatch)
	}

	fail := errors.New("server down")
	mem.SetFail(func(op, key string) error {
		if op == s3backend.OpDeleteBatch {
			return fail
		}
		return nil
	})
	deleteLater(d, keys[deleteMinBatch:]...)
	waitUntil(t, "the failed batch", func() bool { return !d.isDraining() })
	before := mem.Counters()[s3backend.OpDeleteBatch]
	deleteLater(d, "another")
	if after := mem.Counters()[s3backend.OpDeleteBatch]; after != before || d.isDraining() {
		t.Errorf("a removal queued while the server fails sent %d more requests (draining %v): want only the retry to send", after-before, d.isDraining())
	}
	mem.SetFail(nil)
	if err := d.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if left := mem.Keys(); len(left) != 0 {
		t.Errorf("left after flush: %v", left)
	}
}

// deleteLater queues removals of whatever version the keys hold.
func deleteLater(d *deferredDeletes, keys ...string) {
	for _, k := range keys {
		d.DeleteLater(k, "")
	}
}

// noConditions is a server that refuses conditional deletes.
type noConditions struct{ *s3backend.Memory }

func (n noConditions) Remove(ctx context.Context, removals []s3backend.Removal) ([]string, error) {
	for _, r := range removals {
		if r.ETag != "" {
			return nil, fmt.Errorf("DELETE %q: %w (NotImplemented)", r.Key, s3backend.ErrNotImplemented)
		}
	}
	return n.Memory.Remove(ctx, removals)
}

// TestDeletesWithoutConditions: where the server refuses If-Match on
// deletes, removals still go, without it, from then on.
func TestDeletesWithoutConditions(t *testing.T) {
	mem := s3backend.NewMemory()
	a := mem.PutObject("a", []byte("x"), nil)
	b := mem.PutObject("b", []byte("y"), nil)
	var logged strings.Builder
	d := newDeferredDeletes(noConditions{mem}, slog.New(slog.NewTextHandler(&logged, nil)))
	d.DeleteLater("a", a.ETag)
	if err := d.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	d.DeleteLater("b", b.ETag)
	if err := d.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if keys := mem.Keys(); len(keys) != 0 {
		t.Errorf("left: %v", keys)
	}
	if n := strings.Count(logged.String(), "refuses conditional deletes"); n != 1 {
		t.Errorf("the fallback was logged %d times, want once:\n%s", n, logged.String())
	}
}
