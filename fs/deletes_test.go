package fs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
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
