package fs

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3drive/s3drive/s3backend"
)

// writeWaiting writes path and expects EIO: S3 refused the upload or its
// answer was lost, so the data waits, staged, for a retry.
func writeWaiting(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write %s: %v, want EIO (upload refused or unanswered, data kept)", filepath.Base(path), err)
	}
}

// refusePuts makes mem refuse uploads of keys, as an unavailable server.
func refusePuts(mem *s3backend.Memory, keys ...string) {
	mem.SetFail(func(op, key string) error {
		if op == s3backend.OpPut && slices.Contains(keys, key) {
			return errors.New("injected: server unavailable")
		}
		return nil
	})
}

// serverBack lets mem answer again and waits until every waiting upload
// and removal of fsys has gone through.
func serverBack(t *testing.T, mem *s3backend.Memory, fsys *FS) {
	t.Helper()
	mem.SetFail(nil)
	if err := fsys.FlushAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
}

// wantObjects checks that S3 holds exactly the objects of want, with
// their contents.
func wantObjects(t *testing.T, mem *s3backend.Memory, want map[string]string) {
	t.Helper()
	if keys, wantKeys := mem.Keys(), slices.Sorted(maps.Keys(want)); !slices.Equal(keys, wantKeys) {
		t.Errorf("S3 holds %q, want exactly %q", keys, wantKeys)
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		if got := readObject(t, mem, key); got != want[key] {
			t.Errorf("%s in S3 = %q, want %q", key, got, want[key])
		}
	}
}

// TestWaitingFileReplacedOrMovedLeavesNothingBehind: files whose data
// still waits for its upload (a failed close here; every close under
// write-back) are moved, replaced and removed. Once uploads go through,
// S3 holds exactly what the tree shows: no object a move or removal left
// behind, no replaced file's data landing over its replacement, and no
// conflicted copy.
func TestWaitingFileReplacedOrMovedLeavesNothingBehind(t *testing.T) {
	mem := s3backend.NewMemory()
	for _, k := range []string{"old", "x", "keep"} {
		mem.PutObject(k, []byte(k+" in S3"), nil)
	}
	dir, fsys := testMount(t, mem)
	for _, k := range []string{"old", "x", "keep"} {
		if _, err := os.Stat(filepath.Join(dir, k)); err != nil {
			t.Fatal(err)
		}
	}
	refusePuts(mem, "tmp", "c", "a", "old", "x", "y")
	write := func(name, data string) {
		t.Helper()
		writeWaiting(t, filepath.Join(dir, name), data)
	}
	mv := func(from, to string) {
		t.Helper()
		if err := os.Rename(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	// A waiting file moved over an object, then removed: the object goes.
	write("tmp", "tmp data")
	mv("tmp", "old")
	if err := os.Remove(filepath.Join(dir, "old")); err != nil {
		t.Fatal(err)
	}
	// Moved over an object, then on: the object it replaced goes too.
	write("c", "c data")
	mv("c", "x")
	mv("x", "y")
	// A waiting file replaced by another: its data never lands.
	write("a", "a data")
	mv("keep", "a")

	serverBack(t, mem, fsys)
	// a holds the file moved over it.
	wantObjects(t, mem, map[string]string{"a": "keep in S3", "y": "c data"})
}

// TestUnansweredUploadRemovedOrMoved: an upload that landed without its
// answer (every attempt, here) leaves the file waiting, as if it had
// failed. Removing the file,
// or moving it away, must take that landed version out of S3 too.
func TestUnansweredUploadRemovedOrMoved(t *testing.T) {
	mem := s3backend.NewMemory()
	lossy := &lostAnswer{Memory: mem, lost: map[string]bool{}, every: true}
	dir, fsys := testMountWith(t, mem, Options{Backend: lossy})
	for _, name := range []string{"gone.txt", "moved.txt", "replaced.txt"} {
		writeWaiting(t, filepath.Join(dir, name), name)
	}
	if err := os.Remove(filepath.Join(dir, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "moved.txt"), filepath.Join(dir, "there.txt")); err != nil {
		t.Fatal(err)
	}
	// replaced.txt is replaced by there.txt: the landed version is what
	// the move replaces, with no conflicted copy.
	if err := os.Rename(filepath.Join(dir, "there.txt"), filepath.Join(dir, "replaced.txt")); err != nil {
		t.Fatal(err)
	}
	lossy.mu.Lock()
	lossy.every = false
	lossy.mu.Unlock()
	if err := fsys.FlushAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	if keys := mem.Keys(); !slices.Equal(keys, []string{"replaced.txt"}) {
		t.Errorf("S3 holds %q, want exactly [replaced.txt]", keys)
	}
	if got := readObject(t, mem, "replaced.txt"); got != "moved.txt" {
		t.Errorf("replaced.txt = %q, want the moved file's data", got)
	}
}

// TestFileUploadedDuringReaddirIsListed: a file created here, whose upload
// lands while a readdir's listing is on its way (asked for before, so it
// does not show the file), is in that readdir: it existed all along. Its
// upload ends its "created here" state before the readdir ends; under
// write-back that happens in the background at any time.
func TestFileUploadedDuringReaddirIsListed(t *testing.T) {
	mem := s3backend.NewMemory()
	held := &heldList{Memory: mem}
	dir, fsys := testMountWith(t, mem, Options{Backend: held})
	f, err := os.Create(filepath.Join(dir, "new.txt"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("made before the readdir")
	fsys.cache.DropTree("")
	g := newGate(s3backend.OpList, "")
	held.gate.Store(g)
	listed := make(chan []string, 1)
	go func() {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Error(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		listed <- names
	}()
	<-g.arrived // S3 answered without new.txt; the answer is held
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	close(g.open)
	if names := <-listed; !slices.Contains(names, "new.txt") {
		t.Errorf("the readdir shows %v, without new.txt", names)
	}
}

// TestFolderWhoseMarkerLostItsAnswer: a new folder's marker write that
// reached the server but lost its answer may be in S3, though this mount
// saw it fail. Removing the folder must delete that marker, and renaming
// it must not leave it behind under the old name.
func TestFolderWhoseMarkerLostItsAnswer(t *testing.T) {
	mem := s3backend.NewMemory()
	lossy := &lostAnswer{Memory: mem, lost: map[string]bool{}, every: true}
	dir, fsys := testMountWith(t, mem, Options{Backend: lossy})
	for _, name := range []string{"removed", "renamed"} {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		d, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Sync(); !errors.Is(err, syscall.EIO) {
			t.Fatalf("fsync of %s: %v, want EIO (the answer was lost)", name, err)
		}
		d.Close()
	}
	if err := os.Remove(filepath.Join(dir, "removed")); err != nil {
		t.Fatal(err)
	}
	lossy.mu.Lock()
	lossy.fixed = true
	lossy.mu.Unlock()
	if err := os.Rename(filepath.Join(dir, "renamed"), filepath.Join(dir, "named")); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	if keys := mem.Keys(); !slices.Equal(keys, []string{"named/"}) {
		t.Errorf("S3 holds %q, want exactly [named/]", keys)
	}
}

// TestMoveOverUnansweredUploadWhileUnreachable: a file whose upload landed
// without an answer is replaced by a rename while the server cannot be
// reached, so which version the name holds cannot be asked then. Once
// the server is back, the moved file replaces whichever it is: no
// conflicted copy, and the name holds the moved data. One mover waits for
// its own upload (a copy then), the other is in S3 already (a copy).
func TestMoveOverUnansweredUploadWhileUnreachable(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("clean", []byte("clean in S3"), nil)
	lossy := &lostAnswer{Memory: mem, lost: map[string]bool{}, every: true}
	dir, fsys := testMountWith(t, mem, Options{Backend: lossy})
	if _, err := os.Stat(filepath.Join(dir, "clean")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"target1", "target2"} {
		writeWaiting(t, filepath.Join(dir, name), "landed unanswered")
	}
	mem.SetFail(func(op, key string) error { return errors.New("injected: server unreachable") })
	writeWaiting(t, filepath.Join(dir, "waiting"), "waiting data")
	if err := os.Rename(filepath.Join(dir, "waiting"), filepath.Join(dir, "target1")); err != nil {
		t.Fatal(err)
	}
	mem.SetFail(nil)
	lossy.mu.Lock()
	lossy.fixed = true
	lossy.mu.Unlock()
	if err := os.Rename(filepath.Join(dir, "clean"), filepath.Join(dir, "target2")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.FlushAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	wantObjects(t, mem, map[string]string{"target1": "waiting data", "target2": "clean in S3"})
}

// TestRmdirOfFolderWithForgottenWaitingFile: a file whose upload waits
// (refused here; queued under write-back) and which the kernel forgot
// (memory pressure: drop_caches) is no longer a child of its folder's
// inode, yet it is in the folder and will land there. rmdir must see it:
// ENOTEMPTY, not a folder removed and back once the file lands.
func TestRmdirOfFolderWithForgottenWaitingFile(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	refusePuts(mem, "sub/waiting")
	writeWaiting(t, filepath.Join(dir, "sub", "waiting"), "data")
	forgetWaiting(t, fsys)
	if _, orphan := fsys.orphans.Load("sub/waiting"); !orphan {
		t.Fatal("the forgotten file is not known under its key")
	}
	if err := os.Remove(filepath.Join(dir, "sub")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("rmdir of the folder holding the forgotten file: %v, want ENOTEMPTY", err)
	}
	serverBack(t, mem, fsys)
	if got := readObject(t, mem, "sub/waiting"); got != "data" {
		t.Errorf("sub/waiting = %q", got)
	}
}

// TestFailedRenameKeepsDestination: a rename over a file whose latest
// data still waits for its upload fails (its copy is refused: the server
// is unreachable). The rename did not happen, so the destination keeps
// that data, which reaches S3 once the server is back; nor is anything
// of the source lost.
func TestFailedRenameKeepsDestination(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("src", []byte("source"), nil)
	mem.PutObject("dst", []byte("dst v1"), nil)
	dir, fsys := testMount(t, mem)
	for _, name := range []string{"src", "dst"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	mem.SetFail(func(op, key string) error {
		if op == s3backend.OpPut || op == s3backend.OpCopy {
			return errors.New("injected: server unreachable")
		}
		return nil
	})
	writeWaiting(t, filepath.Join(dir, "dst"), "dst v2, waiting")
	err := os.Rename(filepath.Join(dir, "src"), filepath.Join(dir, "dst"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("rename: %v, want EIO (the copy refused)", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "dst")); err != nil || string(b) != "dst v2, waiting" {
		t.Errorf("dst after the failed rename: %q, %v", b, err)
	}
	serverBack(t, mem, fsys)
	if got := readObject(t, mem, "dst"); got != "dst v2, waiting" {
		t.Errorf("dst in S3 = %q, want its waiting data", got)
	}
	if got := readObject(t, mem, "src"); got != "source" {
		t.Errorf("src in S3 = %q", got)
	}
}

// TestFailedFolderMoveKeepsEmptyDestination: a folder moved over an empty
// folder made here (its marker not written yet) fails, S3 refusing to
// list; the empty folder must stay, and its marker reach S3.
func TestFailedFolderMoveKeepsEmptyDestination(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("a/file", []byte("in a"), nil)
	dir, fsys := testMount(t, mem)
	if err := os.Mkdir(filepath.Join(dir, "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	mem.SetFail(func(op, key string) error {
		if op == s3backend.OpList && key == "b/" {
			return errors.New("injected: server unreachable")
		}
		return nil
	})
	// rename(2) itself: os.Rename refuses an existing folder as the target.
	err := syscall.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("rename: %v, want EIO", err)
	}
	mem.SetFail(nil)
	settle(t, fsys)
	if keys := mem.Keys(); !slices.Equal(keys, []string{"a/file", "b/"}) {
		t.Errorf("S3 holds %q, want [a/file b/]: both folders as they were", keys)
	}
}

// TestFolderMoveOverFolderWithWaitingFile: the destination folder holds
// a file whose upload waits, which S3 does not list yet: it is not empty.
func TestFolderMoveOverFolderWithWaitingFile(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("a/file", []byte("in a"), nil)
	dir, _ := testMount(t, mem)
	if err := os.Mkdir(filepath.Join(dir, "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	refusePuts(mem, "b/waiting")
	writeWaiting(t, filepath.Join(dir, "b", "waiting"), "data")
	err := syscall.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b"))
	if !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("rename over the folder holding a waiting file: %v, want ENOTEMPTY", err)
	}
}

// TestFailedRmdirKeepsWaitingMarker: rmdir of a folder made here, whose
// marker write failed (so it may be in S3), fails to delete that marker:
// the folder stays, and its marker is written once the server is back.
func TestFailedRmdirKeepsWaitingMarker(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	if err := os.Mkdir(filepath.Join(dir, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	mem.SetFail(func(op, key string) error {
		if (op == s3backend.OpPut || op == s3backend.OpDelete) && key == "x/" {
			return errors.New("injected: server unavailable")
		}
		return nil
	})
	d, err := os.Open(filepath.Join(dir, "x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync of x: %v, want EIO", err)
	}
	d.Close()
	fsys.cache.DropTree("x/") // not listed lately: rmdir asks S3
	if err := os.Remove(filepath.Join(dir, "x")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("rmdir: %v, want EIO", err)
	}
	mem.SetFail(nil)
	settle(t, fsys)
	if keys := mem.Keys(); !slices.Equal(keys, []string{"x/"}) {
		t.Errorf("S3 holds %q, want [x/]: the folder rmdir failed on", keys)
	}
}

// TestFailedRenameWhoseCopyLanded: a rename's copy reaches the server but
// its answer is lost, so the rename fails with EIO while the destination
// in S3 now holds the source's content. The destination's waiting data,
// uploaded later, replaces that (the rename did not happen, as it said)
// rather than going to a conflicted copy beside it.
func TestFailedRenameWhoseCopyLanded(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("src", []byte("source"), nil)
	mem.PutObject("dst", []byte("dst v1"), nil)
	lossy := &lostCopyAnswer{Memory: mem}
	lossy.lost.Store(true)
	dir, fsys := testMountWith(t, mem, Options{Backend: lossy})
	for _, name := range []string{"src", "dst"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	refusePuts(mem, "dst")
	writeWaiting(t, filepath.Join(dir, "dst"), "dst v2, waiting")
	err := os.Rename(filepath.Join(dir, "src"), filepath.Join(dir, "dst"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("rename: %v, want EIO (the copy's answer lost)", err)
	}
	lossy.lost.Store(false)
	serverBack(t, mem, fsys)
	if keys := mem.Keys(); !slices.Equal(keys, []string{"dst", "src"}) {
		t.Errorf("S3 holds %q, want exactly [dst src]", keys)
	}
	if got := readObject(t, mem, "dst"); got != "dst v2, waiting" {
		t.Errorf("dst in S3 = %q, want its waiting data", got)
	}
}

// lostCopyAnswer makes copies, while lost, land and then report a
// failure, as a connection cut after the request reached the server does.
type lostCopyAnswer struct {
	*s3backend.Memory
	lost atomic.Bool
}

func (l *lostCopyAnswer) Copy(ctx context.Context, src, dst string, size int64, opts *s3backend.PutOptions, cond s3backend.Conditions) (s3backend.ObjectInfo, error) {
	info, err := l.Memory.Copy(ctx, src, dst, size, opts, cond)
	if err == nil && l.lost.Load() {
		return s3backend.ObjectInfo{}, errors.New("connection reset after the request was sent")
	}
	return info, err
}

// TestRenamedWaitingFileForgottenLandsUnderNewName: a file whose upload
// waits is renamed, and then the kernel forgets it (memory pressure:
// drop_caches). What it still has to send goes under the name it has
// now, not the one it had before the rename.
func TestRenamedWaitingFileForgottenLandsUnderNewName(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	refusePuts(mem, "old", "new")
	writeWaiting(t, filepath.Join(dir, "old"), "data")
	if err := os.Rename(filepath.Join(dir, "old"), filepath.Join(dir, "new")); err != nil {
		t.Fatal(err)
	}
	forgetWaiting(t, fsys)
	serverBack(t, mem, fsys)
	if keys := mem.Keys(); !slices.Equal(keys, []string{"new"}) {
		t.Errorf("S3 holds %q, want exactly [new]", keys)
	}
}

// forgetWaiting makes the kernel forget the test's one file with changes
// still to send, which becomes an orphan. The close's release and the
// kernel's FORGET arrive asynchronously: it asks until it is done.
func forgetWaiting(t *testing.T, fsys *FS) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
			t.Fatal(err)
		}
		forgotten := false
		fsys.orphans.Range(func(any, any) bool {
			forgotten = true
			return false
		})
		if forgotten {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the kernel did not forget the file; the test cannot make its point")
		}
	}
}
