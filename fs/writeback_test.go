package fs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/s3drive/s3drive/fs/journal"
	"github.com/s3drive/s3drive/s3backend"
)

// writeBackMount mounts mem with write-back and a journal.
func writeBackMount(t *testing.T, mem *s3backend.Memory) (string, *FS) {
	t.Helper()
	return writeBackMountBudget(t, mem, 0)
}

// writeBackMountBudget is writeBackMount with a write-back budget (0: the
// default).
func writeBackMountBudget(t *testing.T, mem *s3backend.Memory, budget int64) (string, *FS) {
	t.Helper()
	opts := writeBackOptions(t)
	opts.WriteBackBudget = budget
	return testMountWith(t, mem, opts)
}

// writeBackOptions are the options of a write-back mount: a journal is
// what makes a closed file durable here.
func writeBackOptions(t *testing.T) Options {
	t.Helper()
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), "s3://b/p")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return Options{WriteBack: true, Journal: j}
}

// TestWriteBackRsyncPattern: under write-back, rsync's way of writing a
// file (a temporary name, closed, its times and mode set, renamed) costs
// one upload under the final name, with the times and mode, and nothing
// else: the close returned before any request, and the rest happened
// before the upload started.
func TestWriteBackRsyncPattern(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := writeBackMount(t, mem)
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	mtime := time.Unix(1_000_000_000, 0)
	closed := requestsDuring(mem, func() {
		tmp := filepath.Join(dir, "d", ".f.txt.Xy12")
		if err := os.WriteFile(tmp, []byte("rsynced"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(tmp, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(tmp, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "d", "f.txt")); err != nil {
			t.Fatal(err)
		}
	})
	if len(closed) != 0 {
		t.Errorf("write, close, chtimes, chmod and rename sent %v before returning, want nothing", closed)
	}
	waitUntil(t, "the background upload", func() bool { return fsys.Pending() == 0 })
	settle(t, fsys)
	got := mem.Counters()
	if got[s3backend.OpPut] != 2 || got[s3backend.OpCopy] != 0 { // the folder's marker and f.txt
		t.Errorf("requests in all: %v, want 2 PUTs (marker, file) and no copy", got)
	}
	info, err := mem.Head(t.Context(), "d/f.txt")
	if err != nil || info.Metadata["mtime"] != "1000000000" || info.Metadata["mode"] != "33184" {
		t.Errorf("d/f.txt: %+v, %v; want mtime 1000000000 and mode 0640 stored with it", info, err)
	}
	if keys := mem.Keys(); len(keys) != 2 {
		t.Errorf("S3 holds %v, want d/ and d/f.txt", keys)
	}
}

// TestWriteBackBudgetMakesCloseWait: within the budget a close returns
// before any request, its data durable and queued; past it, a close waits
// for its own upload (here refused: EIO), which paces a writer to the link
// instead of filling the disk. The status shows the queue.
func TestWriteBackBudgetMakesCloseWait(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := writeBackMountBudget(t, mem, 30)
	mem.SetFail(func(op, key string) error {
		if op == s3backend.OpPut {
			return errors.New("injected: server unavailable")
		}
		return nil
	})
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), bytes.Repeat([]byte("a"), 40), 0o644); err != nil {
		t.Fatalf("a close within the budget: %v, want success", err)
	}
	st := fsys.Status()
	if st.WriteBack == nil || st.WriteBack.Files != 1 || st.WriteBack.Bytes != 40 || st.WriteBack.Budget != 30 {
		t.Errorf("status of the queue: %+v", st.WriteBack)
	}
	fsys.writeBacks.mu.Lock()
	fsys.writeBacks.checked = time.Time{} // count again now, not within budgetCheck
	fsys.writeBacks.mu.Unlock()
	err := os.WriteFile(filepath.Join(dir, "b.txt"), []byte("b"), 0o644)
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("a close past the budget: %v, want EIO from its own upload", err)
	}
	if got := mem.Counters()[s3backend.OpPut]; got < 1 {
		t.Errorf("no PUT tried by the close past the budget")
	}
}
