package fs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/s3drive/s3drive/s3backend"
)

// gate blocks the first request of one kind for one key until it is
// opened, and says when that request arrived.
type gate struct {
	op, key string
	arrived chan struct{}
	open    chan struct{}
	once    sync.Once
}

func newGate(op, key string) *gate {
	return &gate{op: op, key: key, arrived: make(chan struct{}), open: make(chan struct{})}
}

// hook is a Memory fault hook that holds g's request; seen records every
// request it passes.
func (g *gate) hook(seen func(op, key string)) func(op, key string) error {
	return func(op, key string) error {
		if seen != nil {
			seen(op, key)
		}
		if op == g.op && key == g.key {
			first := false
			g.once.Do(func() { first = true })
			if first {
				close(g.arrived)
				<-g.open
			}
		}
		return nil
	}
}

// TestQueuedRemovalNeverDeletesANewerVersion: a removal queued for a name
// must not delete a version written after it was queued — by this mount
// while the batch is in flight, by this mount while the batch would go,
// or by another client.
func TestQueuedRemovalNeverDeletesANewerVersion(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Run("write while the batch is in flight", func(t *testing.T) {
		mem := s3backend.NewMemory()
		old := mem.PutObject("x", []byte("old"), nil)
		d := newDeferredDeletes(mem, log)
		d.delay = time.Hour
		g := newGate(s3backend.OpDelete, "x")
		var putSeen atomic.Bool
		mem.SetFail(g.hook(func(op, key string) {
			if op == s3backend.OpPut && key == "x" {
				putSeen.Store(true)
			}
		}))
		d.DeleteLater("x", old.ETag)
		flushed := make(chan error, 1)
		go func() { flushed <- d.Flush(t.Context()) }()
		<-g.arrived
		wrote := make(chan error, 1)
		go func() {
			_, err := d.Upload(t.Context(), "x", strings.NewReader("old"), 3, s3backend.PutOptions{})
			wrote <- err
		}()
		// The delete goes on once the write is either on its way (the bug)
		// or waiting for the batch (the fix).
		waitUntil(t, "the write to reach S3 or wait for the batch", func() bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return putSeen.Load() || d.writeWaits > 0
		})
		close(g.open)
		if err := <-flushed; err != nil {
			t.Fatal(err)
		}
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		if _, err := mem.Head(t.Context(), "x"); err != nil {
			t.Errorf("the version written while its removal was in flight is gone: %v", err)
		}
	})
	t.Run("batch while a write is on its way", func(t *testing.T) {
		mem := s3backend.NewMemory()
		old := mem.PutObject("x", []byte("old"), nil)
		d := newDeferredDeletes(mem, log)
		d.delay = time.Hour
		g := newGate(s3backend.OpPut, "x")
		mem.SetFail(g.hook(nil))
		d.DeleteLater("x", old.ETag)
		wrote := make(chan error, 1)
		go func() {
			// The same bytes again: the same ETag, which the removal's
			// condition cannot tell from the version it meant.
			_, err := d.Upload(t.Context(), "x", strings.NewReader("old"), 3, s3backend.PutOptions{})
			wrote <- err
		}()
		<-g.arrived
		if err := d.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		close(g.open)
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		if err := d.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := mem.Head(t.Context(), "x"); err != nil {
			t.Errorf("the version written after its removal was queued is gone: %v", err)
		}
		if d.isPending("x") {
			t.Error("the write did not settle the removal queued before it")
		}
	})
	t.Run("another client's write", func(t *testing.T) {
		mem := s3backend.NewMemory()
		old := mem.PutObject("x", []byte("old"), nil)
		d := newDeferredDeletes(mem, log)
		d.DeleteLater("x", old.ETag)
		mem.PutObject("x", []byte("theirs"), nil)
		if err := d.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := readObject(t, mem, "x"); got != "theirs" {
			t.Errorf("x holds %q, want the other client's newer version", got)
		}
	})
}

func readObject(t *testing.T, mem *s3backend.Memory, key string) string {
	t.Helper()
	rc, err := mem.Get(t.Context(), key, 0, -1, "")
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReaderCloseDoesNotCutAStream: a program opening and closing a file
// while another is still writing it (a file manager sniffing its type)
// must not complete the streamed upload half way.
func TestReaderCloseDoesNotCutAStream(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.Parts = 5 << 20
	dir, _ := testMount(t, mem)
	p := filepath.Join(dir, "big.bin")
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })                          // before the unmount, if the test stops early
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for range 12 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if c := mem.Counters(); c[s3backend.OpCreateMultipart] != 1 {
		t.Fatalf("12 MiB written at 5 MiB parts: %v, want a streamed upload running", c)
	}
	for _, flags := range []int{os.O_RDONLY, os.O_RDWR} {
		r, err := os.OpenFile(p, flags, 0)
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 16)
		if _, err := io.ReadFull(r, head); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if keys := mem.Keys(); len(keys) != 0 {
		t.Fatalf("after a reader's close, S3 holds %v while the writer is still writing", keys)
	}
	for range 12 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c := mem.Counters()
	if c[s3backend.OpCompleteMultipart] != 1 || c[s3backend.OpUploadPart] != 5 || c[s3backend.OpPut] != 0 ||
		c[s3backend.OpCreateMultipart] != 1 {
		t.Errorf("24 MiB at 5 MiB parts cost %v: want 1 upload of 5 parts, completed once", c)
	}
	if got := readObject(t, mem, "big.bin"); len(got) != 24<<20 {
		t.Errorf("S3 holds %d bytes, want %d", len(got), 24<<20)
	}
}

// TestRemovedFolderNeverComesBack: a folder removed with rm -r stays gone
// from every listing while its removals wait for their batch, whether it
// had a marker or existed only through its files.
func TestRemovedFolderNeverComesBack(t *testing.T) {
	for _, marker := range []bool{true, false} {
		t.Run(map[bool]string{true: "with marker", false: "implicit"}[marker], func(t *testing.T) {
			mem := s3backend.NewMemory()
			if marker {
				mem.PutObject("t/", nil, nil)
			}
			mem.PutObject("t/f", []byte("x"), nil)
			mem.PutObject("t/sub/g", []byte("y"), nil)
			dir, fsys := testMount(t, mem)
			fsys.deletes.mu.Lock()
			fsys.deletes.delay = time.Hour // the batch waits; the folder must stay hidden
			fsys.deletes.mu.Unlock()
			if err := os.RemoveAll(filepath.Join(dir, "t")); err != nil {
				t.Fatal(err)
			}
			if len(mem.Keys()) == 0 {
				t.Fatal("the removals went out at once; the test needs them queued")
			}
			for range 3 {
				fsys.cache.DropTree("") // the next listing is fresh from S3
				if got := names(t, dir); slices.Contains(got, "t") {
					t.Fatalf("removed folder listed again: %v", got)
				}
				if _, err := os.Stat(filepath.Join(dir, "t")); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("stat of the removed folder: %v, want ENOENT", err)
				}
			}
			if err := fsys.deletes.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			if left := mem.Keys(); len(left) != 0 {
				t.Errorf("left in S3 after the batch: %v", left)
			}
		})
	}
}

// TestOpenFileReadableAfterUnlink: descriptors open on a file keep
// reading its content after it is unlinked or replaced by a rename, even
// once S3 no longer holds it.
func TestOpenFileReadableAfterUnlink(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("a", []byte("content of a"), nil)
	mem.PutObject("b", []byte("content of b"), nil)
	mem.PutObject("c", []byte("content of c"), nil)
	dir, fsys := testMount(t, mem)
	fa, err := os.Open(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	if err := os.Remove(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "c"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.deletes.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if keys := mem.Keys(); !slices.Equal(keys, []string{"b"}) {
		t.Fatalf("S3 holds %v, want only b", keys)
	}
	for f, want := range map[*os.File]string{fa: "content of a", fb: "content of b"} {
		got, err := io.ReadAll(f)
		if err != nil || string(got) != want {
			t.Errorf("read through %s after it was removed: %q, %v; want %q", f.Name(), got, err, want)
		}
	}
	if got := readObject(t, mem, "b"); got != "content of c" {
		t.Errorf("b holds %q, want c's content", got)
	}
}

// TestNamesS3CannotHoldFailAtOnce: a name over 255 bytes, or a path whose
// key would pass S3's 1,024 bytes, fails with ENAMETOOLONG when it is made,
// not with EIO at close.
func TestNamesS3CannotHoldFailAtOnce(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, _ := testMount(t, mem)
	long := strings.Repeat("n", 256)
	must := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, syscall.ENAMETOOLONG) {
			t.Errorf("%s: %v, want ENAMETOOLONG", what, err)
		}
	}
	_, err := os.Create(filepath.Join(dir, long))
	must("create of a 256-byte name", err)
	must("mkdir of a 256-byte name", os.Mkdir(filepath.Join(dir, long), 0o755))
	_, err = os.Stat(filepath.Join(dir, long))
	must("stat of a 256-byte name", err)
	must("symlink with a 256-byte name", os.Symlink("x", filepath.Join(dir, long)))

	// Four folders of 250 bytes make a 1,004-byte key; a fifth passes 1,024.
	p := dir
	for i := range 4 {
		p = filepath.Join(p, strings.Repeat(string(rune('a'+i)), 250))
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must("mkdir past 1,024 bytes", os.Mkdir(filepath.Join(p, strings.Repeat("e", 30)), 0o755))
	_, err = os.Create(filepath.Join(p, strings.Repeat("e", 30)))
	must("create past 1,024 bytes", err)
	if err := os.WriteFile(filepath.Join(p, "ok"), []byte("x"), 0o644); err != nil {
		t.Errorf("a key of 1,007 bytes: %v", err)
	}
	must("rename to past 1,024 bytes", os.Rename(filepath.Join(p, "ok"), filepath.Join(p, strings.Repeat("e", 30))))
	if err := os.WriteFile(filepath.Join(dir, "top"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	must("rename from the root to past 1,024 bytes", os.Rename(filepath.Join(dir, "top"), filepath.Join(p, strings.Repeat("e", 30))))
}

// TestListingOvertakenByAChangeIsNotCached: a listing sent before this
// mount renamed a file and answered after it describes a folder that no
// longer exists; cached, it would hide the new name (the ENOENT on their
// own names that concurrent programs saw). It is taken again instead.
func TestListingOvertakenByAChangeIsNotCached(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("a", []byte("x"), nil)
	held := &heldList{Memory: mem}
	dir, fsys := testMountWith(t, mem, Options{Backend: held})
	if _, err := os.Stat(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	fsys.cache.DropTree("")
	g := newGate(s3backend.OpList, "")
	held.gate.Store(g)
	listed := make(chan error, 1)
	go func() {
		_, err := fsys.listShared(t.Context(), "")
		listed <- err
	}()
	<-g.arrived
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	close(g.open)
	if err := <-listed; err != nil {
		t.Fatal(err)
	}
	l, fresh := fsys.cache.Listing("")
	if !fresh {
		t.Fatal("no listing of the folder cached")
	}
	if _, ok := l.Get("b"); !ok {
		t.Errorf("the cached listing lacks b, renamed while it was on its way: %v", l.Entries())
	}
	if _, ok := l.Get("a"); ok {
		t.Errorf("the cached listing shows a, renamed away while it was on its way")
	}
}

// heldList holds the answer to a listing of gate's prefix (or a HEAD of
// its key, for gate.op HeadObject), once S3 has made it, until the gate
// opens: the answer describes S3 as it was.
type heldList struct {
	*s3backend.Memory
	gate atomic.Pointer[gate]
}

func (h *heldList) List(ctx context.Context, prefix, delimiter, token string, maxKeys int) (s3backend.ListPage, error) {
	page, err := h.Memory.List(ctx, prefix, delimiter, token, maxKeys)
	if g := h.gate.Load(); g != nil && g.op == s3backend.OpList && prefix == g.key {
		g.hook(nil)(s3backend.OpList, prefix)
	}
	return page, err
}

func (h *heldList) Head(ctx context.Context, key string) (s3backend.ObjectInfo, error) {
	info, err := h.Memory.Head(ctx, key)
	if g := h.gate.Load(); g != nil && g.op == s3backend.OpHead && key == g.key {
		g.hook(nil)(s3backend.OpHead, key)
	}
	return info, err
}

// TestHeadOvertakenByAChangeIsNotTaken: a HEAD sent before this mount
// stored a chmod and answered after it carries the old mode; the inode
// must not take it, or the next upload stores the old mode again.
func TestHeadOvertakenByAChangeIsNotTaken(t *testing.T) {
	mem := s3backend.NewMemory()
	held := &heldList{Memory: mem}
	dir, fsys := testMountWith(t, mem, Options{Backend: held})
	p := filepath.Join(dir, "a")
	if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	fsys.cache.DropTree("")
	fsys.cache.Delete("a")
	g := newGate(s3backend.OpHead, "a")
	held.gate.Store(g)
	looked := make(chan error, 1)
	go func() {
		res, err := fsys.resolve(t.Context(), "", "a")
		if err == nil {
			fsys.root.child(t.Context(), "", "a", res, new(fuse.Attr))
		}
		looked <- err
	}()
	<-g.arrived
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o640); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil { // the mode is in S3
		t.Fatal(err)
	}
	close(g.open)
	if err := <-looked; err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("y"); err != nil { // uploads with the inode's attributes
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := mem.Head(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if m := decodeMeta(info); m.Mode&0o7777 != 0o640 {
		t.Errorf("S3 holds mode %o after chmod 640, fsync and a write: a stale HEAD undid the chmod", m.Mode&0o7777)
	}
}

// TestOnlyTheWritersCloseUploads: a child process closing a descriptor it
// inherited does not upload while the writer goes on; what a process other
// than the opener wrote after the opener closed goes up at the last
// release.
func TestOnlyTheWritersCloseUploads(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, _ := testMount(t, mem)
	p := filepath.Join(dir, "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.WriteString("a"); err != nil {
		t.Fatal(err)
	}
	// A child that inherits the descriptor and exits, closing its copy.
	child := exec.Command("true")
	child.ExtraFiles = []*os.File{f}
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	if keys := mem.Keys(); len(keys) != 0 {
		t.Fatalf("a child's close of an inherited descriptor uploaded: S3 holds %v", keys)
	}
	// A child that writes after the opener has closed.
	writer := exec.Command("sh", "-c", `read go; printf b >&3`)
	writer.ExtraFiles = []*os.File{f}
	stdin, err := writer.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readObject(t, mem, "f"); got != "a" {
		t.Fatalf("the opener's close stored %q, want %q", got, "a")
	}
	io.WriteString(stdin, "go\n")
	stdin.Close()
	if err := writer.Wait(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the last release to upload what the child wrote", func() bool {
		rc, err := mem.Get(t.Context(), "f", 0, -1, "")
		if err != nil {
			return false
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b) == "ab"
	})
	if c := mem.Counters()[s3backend.OpPut]; c != 2 {
		t.Errorf("%d PutObject, want 2: the opener's close and the last release", c)
	}
}

// TestRedirectionUploadsOnce: a shell redirection opens the file, dup2s
// it onto stdout and closes the original before the command writes; that
// close must not upload an empty object first. touch, which closes what
// it created and holds nothing else, still creates the object at close.
func TestRedirectionUploadsOnce(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, _ := testMountWith(t, mem, Options{})
	before := mem.Counters()[s3backend.OpPut]
	if out, err := exec.Command("sh", "-c", "echo hello > "+filepath.Join(dir, "f.txt")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if puts := mem.Counters()[s3backend.OpPut] - before; puts != 1 {
		t.Errorf("echo > new file cost %d PUTs, want 1", puts)
	}
	if out, err := exec.Command("touch", filepath.Join(dir, "g.txt")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !slices.Contains(mem.Keys(), "g.txt") {
		t.Errorf("touch returned before g.txt was in S3: %v", mem.Keys())
	}
}
