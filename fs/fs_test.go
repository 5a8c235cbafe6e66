package fs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/s3drive/s3drive/cache"
	"github.com/s3drive/s3drive/s3backend"
)

// testMount mounts a filesystem over mem in-process and unmounts it when
// the test ends. It needs /dev/fuse (root): a failure under CI, a visible
// skip elsewhere.
func testMount(t *testing.T, mem *s3backend.Memory) (string, *FS) {
	t.Helper()
	return testMountWith(t, mem, Options{})
}

// testMountWith mounts with opts, whose backend, cache and staging
// directory it fills in.
func testMountWith(t *testing.T, mem *s3backend.Memory, opts Options) (string, *FS) {
	t.Helper()
	return testMountTweaked(t, mem, opts, nil)
}

// testMountTweaked is testMountWith with go-fuse's options changed by tweak.
func testMountTweaked(t *testing.T, mem *s3backend.Memory, opts Options, tweak func(*fs.Options)) (string, *FS) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("FUSE unavailable under CI: /dev/fuse: %v, euid %d", err, os.Geteuid())
		}
		t.Skip("needs root and /dev/fuse")
	}
	c, err := cache.Open(cache.Options{TTL: time.Minute, NegativeTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Backend == nil {
		opts.Backend = mem
	}
	opts.Cache, opts.StagingDir, opts.Mountpoint = c, t.TempDir(), t.TempDir()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(newTestLog(t), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	fsys, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := opts.Mountpoint
	mountOpts := fsys.MountOptions("memory", false, false)
	if tweak != nil {
		tweak(mountOpts)
	}
	server, err := fs.Mount(dir, fsys.Root(), mountOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Unmount() })
	fsys.Mounted(server)
	if opts.Passthrough && !fsys.ProbePassthrough(server) {
		t.Fatal("FUSE passthrough refused: this kernel (6.9+) and root should allow it")
	}
	return dir, fsys
}

// testLog writes a mount's log lines into the test's output while the
// test runs. The mount's background work (write-back's queue, retries)
// may outlive the test, which testing forbids logging after: those lines
// are dropped.
type testLog struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func newTestLog(t *testing.T) *testLog {
	l := &testLog{t: t}
	t.Cleanup(func() { // registered first, so it runs after the mount's
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		out = append(out, n)
	}
	return out
}

func TestHostileKeysAreHiddenNeverFollowed(t *testing.T) {
	mem := s3backend.NewMemory()
	for _, k := range []string{"ok.txt", "a//b.txt", "../escape.txt", "x/./y", "x/../../etc/passwd",
		strings.Repeat("n", 300), "nul\x00byte", "legacy_$folder$", "both", "both/inner", "spaced name?.txt"} {
		mem.PutObject(k, []byte(k), nil)
	}
	dir, _ := testMount(t, mem)
	want := []string{"a/", "both/", "legacy/", "ok.txt", "spaced name?.txt", "x/"}
	if got := names(t, dir); !slices.Equal(got, want) {
		t.Errorf("root lists %q, want %q", got, want)
	}
	if got := names(t, filepath.Join(dir, "x")); len(got) != 0 {
		t.Errorf("x/ lists %q: '.' and '..' segments must stay hidden", got)
	}
	if got := names(t, filepath.Join(dir, "a")); len(got) != 0 {
		t.Errorf("a/ lists %q: an empty segment must stay hidden", got)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "spaced name?.txt")); err != nil || string(b) != "spaced name?.txt" {
		t.Errorf("reading an odd but valid name: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "both", "inner")); err != nil {
		t.Errorf("when key 'both' and prefix 'both/' exist the folder must win: %v", err)
	}
}

func TestWriteReadOverwrite(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, _ := testMount(t, mem)
	p := filepath.Join(dir, "doc.txt")
	if err := os.WriteFile(p, []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("version two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "version two" {
		t.Errorf("read back %q", b)
	}
	info, err := mem.Head(t.Context(), "doc.txt")
	if err != nil || info.Size != 11 || info.Metadata["mode"] != "33152" || info.Metadata["mtime"] == "" {
		t.Errorf("object: %+v, %v", info, err)
	}
	if c := mem.Counters(); c[s3backend.OpPut] != 2 {
		t.Errorf("two writes and closes cost %d PUTs, want 2", c[s3backend.OpPut])
	}
}

// TestFailedUploadReturnsEIOAndKeepsData: close() reports the failure, the
// staged bytes stay on disk, and a later flush (unmount) uploads them.
func TestFailedUploadReturnsEIOAndKeepsData(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	mem.SetFail(func(op, key string) error {
		if op == s3backend.OpPut {
			return errors.New("injected: server unavailable")
		}
		return nil
	})
	f, err := os.Create(filepath.Join(dir, "precious"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("keep me")
	if err := f.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("close after a failed upload: %v, want EIO", err)
	}
	staged, _ := filepath.Glob(filepath.Join(fsys.opts.StagingDir, "stage-*"))
	if len(staged) != 1 {
		t.Fatalf("staged files: %v", staged)
	}
	if b, _ := os.ReadFile(staged[0]); string(b) != "keep me" {
		t.Fatalf("staged data %q", b)
	}
	if err := fsys.FlushAll(t.Context()); err == nil {
		t.Fatal("FlushAll succeeded while uploads fail")
	}
	mem.SetFail(nil)
	if err := fsys.FlushAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	rc, err := mem.Get(t.Context(), "precious", 0, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	// The kernel sends RELEASE asynchronously after close(2) returns; the
	// staging file goes with the upload or with that release, whichever is
	// last.
	deadline := time.Now().Add(5 * time.Second)
	for {
		staged, _ := filepath.Glob(filepath.Join(fsys.opts.StagingDir, "stage-*"))
		if len(staged) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("staging not cleaned after upload: %v", staged)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRenameBeforeCloseUploadsOnce: the temp-file-then-rename pattern
// uploads once, under the final name, when the rename comes first.
func TestRenameBeforeCloseUploadsOnce(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	f, err := os.Create(filepath.Join(dir, ".report.XXXX"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("final")
	if err := os.Rename(filepath.Join(dir, ".report.XXXX"), filepath.Join(dir, "report")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	c := mem.Counters()
	if c[s3backend.OpPut] != 1 || c[s3backend.OpCopy] != 0 || c[s3backend.OpDelete] != 0 {
		t.Errorf("requests %v: want exactly one PUT", c)
	}
	if keys := mem.Keys(); !slices.Equal(keys, []string{"report"}) {
		t.Errorf("keys %v", keys)
	}
	// A renamed clean file costs one copy and one delete.
	before := mem.Counters()
	if err := os.Rename(filepath.Join(dir, "report"), filepath.Join(dir, "renamed")); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	after := mem.Counters()
	if after[s3backend.OpCopy]-before[s3backend.OpCopy] != 1 || after[s3backend.OpDelete]-before[s3backend.OpDelete] != 1 {
		t.Errorf("rename of an uploaded file: %v -> %v", before, after)
	}
}

// settle sends what the mount has queued: folder markers (written
// MetaDelay after the folder's last change) and deletes (unlink and rename
// send theirs in batches, within deleteDelay).
func settle(t *testing.T, fsys *FS) {
	t.Helper()
	if errno := fsys.flushMarkers(t.Context(), ""); errno != 0 {
		t.Fatal(errno)
	}
	if err := fsys.deletes.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// requestsDuring runs fn and returns the requests it sent, by operation.
func requestsDuring(mem *s3backend.Memory, fn func()) map[string]int64 {
	before := mem.Counters()
	fn()
	delta := map[string]int64{}
	for op, n := range mem.Counters() {
		if d := n - before[op]; d != 0 {
			delta[op] = d
		}
	}
	return delta
}

// TestAttributesAfterCloseRideWithRename is rsync's pattern: a temp file is
// written and closed (one upload), then chmod and utimes, then renamed. The
// attribute changes wait and travel with the rename's copy.
func TestAttributesAfterCloseRideWithRename(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	tmp, final := filepath.Join(dir, ".doc.Ab12Cd"), filepath.Join(dir, "doc")
	mtime := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	names(t, dir) // the folder is listed: lookups need no request
	if got := requestsDuring(mem, func() {
		if err := os.WriteFile(tmp, []byte("payload"), 0o600); err != nil {
			t.Fatal(err)
		}
	}); got[s3backend.OpPut] != 1 || len(got) != 1 {
		t.Fatalf("write and close: %v, want one PUT", got)
	}
	if got := requestsDuring(mem, func() {
		if err := os.Chtimes(tmp, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		// rsync's chmod: open, fchmod, close.
		f, err := os.Open(tmp)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Chmod(0o640); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}); len(got) != 0 {
		t.Errorf("chmod and utimes sent %v before the rename", got)
	}
	if st, err := os.Stat(tmp); err != nil || st.Mode().Perm() != 0o640 || !st.ModTime().Equal(mtime) {
		t.Errorf("stat after chmod/utimes: %v, %v", st, err)
	}
	if got := requestsDuring(mem, func() {
		if err := os.Rename(tmp, final); err != nil {
			t.Fatal(err)
		}
		settle(t, fsys)
	}); got[s3backend.OpCopy] != 1 || got[s3backend.OpDelete] != 1 || len(got) != 2 {
		t.Errorf("rename: %v, want one copy and one delete", got)
	}
	info, err := mem.Head(t.Context(), "doc")
	if err != nil || info.Metadata["mode"] != fmt.Sprint(syscall.S_IFREG|0o640) ||
		info.Metadata["mtime"] != formatMtime(mtime) {
		t.Errorf("renamed object: %+v, %v", info, err)
	}

	// Without a rename, fsync stores the change at once, and so does unmount.
	if err := os.Chmod(final, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := requestsDuring(mem, func() {
		f, err := os.Open(final)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Error(err)
		}
		f.Close()
	}); got[s3backend.OpCopy] != 1 || len(got) != 1 {
		t.Errorf("fsync after chmod: %v, want one copy", got)
	}
	if err := os.Chmod(final, 0o604); err != nil {
		t.Fatal(err)
	}
	if got := requestsDuring(mem, func() {
		if err := fsys.FlushAll(t.Context()); err != nil {
			t.Error(err)
		}
	}); got[s3backend.OpCopy] != 1 || len(got) != 1 {
		t.Errorf("unmount flush after chmod: %v, want one copy", got)
	}
	if info, _ := mem.Head(t.Context(), "doc"); info.Metadata["mode"] != fmt.Sprint(syscall.S_IFREG|0o604) {
		t.Errorf("mode after flush: %v", info.Metadata)
	}

	// A file removed before its change was stored costs only the delete
	// (once the kernel's release of the descriptor closed above arrived:
	// a file removed while open is first staged for its readers).
	doc := fsys.root.GetChild("doc").Operations().(*File)
	waitUntil(t, "the release of the closed descriptor", func() bool {
		doc.mu.Lock()
		defer doc.mu.Unlock()
		return doc.handles == 0
	})
	if err := os.Chmod(final, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := requestsDuring(mem, func() {
		if err := os.Remove(final); err != nil {
			t.Fatal(err)
		}
		if err := fsys.FlushAll(t.Context()); err != nil {
			t.Error(err)
		}
	}); got[s3backend.OpDelete] != 1 || len(got) != 1 {
		t.Errorf("chmod then rm: %v, want one delete", got)
	}
}

// TestDeferredAttributesAreStoredAfterMetaDelay: with nobody to carry it,
// a chmod reaches S3 by itself once MetaDelay has passed.
func TestDeferredAttributesAreStoredAfterMetaDelay(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("f", []byte("x"), nil)
	dir, _ := testMountWith(t, mem, Options{MetaDelay: 20 * time.Millisecond})
	if err := os.Chmod(filepath.Join(dir, "f"), 0o612); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(syscall.S_IFREG | 0o612)
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := mem.Head(t.Context(), "f")
		if err == nil && info.Metadata["mode"] == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mode never stored: %+v, %v", info, err)
		}
		time.Sleep(5 * time.Millisecond) // polling S3's state, not ordering events
	}
	if c := mem.Counters(); c[s3backend.OpCopy] != 1 {
		t.Errorf("copies: %d, want 1", c[s3backend.OpCopy])
	}
}

func TestPagedListingAndPrefetch(t *testing.T) {
	mem := s3backend.NewMemory()
	const n = 2500
	for i := range n {
		mem.PutObject(fmt.Sprintf("many/f%04d", i), []byte("x"), map[string]string{"mode": "33184"})
	}
	dir, _ := testMount(t, mem)
	names(t, dir)
	before := mem.Counters()
	entries, err := os.ReadDir(filepath.Join(dir, "many"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries[:10] {
		if info, err := e.Info(); err != nil || info.Mode().Perm() != 0o640 {
			t.Fatalf("%s: %v %v", e.Name(), info.Mode(), err)
		}
	}
	after := mem.Counters()
	if len(entries) != n {
		t.Errorf("%d entries, want %d", len(entries), n)
	}
	// The lookup of many reads its first page to learn it has no marker
	// (no HEAD); readdir then reads all three.
	if lists := after[s3backend.OpList] - before[s3backend.OpList]; lists != 4 {
		t.Errorf("listing %d keys took %d LISTs, want 1 + 3 pages", n, lists)
	}
	if heads := after[s3backend.OpHead] - before[s3backend.OpHead]; heads > n {
		t.Errorf("%d HEADs for %d never-seen objects, want at most one each", heads, n)
	}
}

func TestFoldersStayFolders(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("implicit/only.txt", []byte("x"), nil)
	dir, fsys := testMount(t, mem)
	if err := os.Remove(filepath.Join(dir, "implicit")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("rmdir of a non-empty folder: %v, want ENOTEMPTY", err)
	}
	names(t, filepath.Join(dir, "implicit"))
	if err := os.Remove(filepath.Join(dir, "implicit", "only.txt")); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	if keys := mem.Keys(); !slices.Equal(keys, []string{"implicit/"}) {
		t.Errorf("after removing the last file of an implicit folder, keys = %v; want its marker", keys)
	}
	if err := os.Remove(filepath.Join(dir, "implicit")); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	if keys := mem.Keys(); len(keys) != 0 {
		t.Errorf("after rmdir, keys = %v", keys)
	}
	if err := os.Link(filepath.Join(dir, "x"), filepath.Join(dir, "y")); err == nil {
		t.Error("hard link succeeded")
	}
}

// TestFailedFolderMoveLeavesNoPartialCopy: a folder move that fails part
// way reports EIO and removes what it had copied; the source is untouched.
func TestFailedFolderMoveLeavesNoPartialCopy(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("dir/", nil, map[string]string{"mode": "16877"})
	for i := range 20 {
		mem.PutObject(fmt.Sprintf("dir/sub/f%02d", i), []byte("x"), nil)
	}
	before := mem.Keys()
	dir, _ := testMount(t, mem)
	mem.SetFail(func(op, key string) error {
		if op == s3backend.OpCopy && key == "dir/sub/f13" {
			return errors.New("injected copy failure")
		}
		return nil
	})
	err := os.Rename(filepath.Join(dir, "dir"), filepath.Join(dir, "moved"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("rename with a failing copy: %v, want EIO", err)
	}
	if after := mem.Keys(); !slices.Equal(after, before) {
		t.Errorf("keys after a failed move:\n%v\nwant\n%v", after, before)
	}
	mem.SetFail(nil)
	if err := os.Rename(filepath.Join(dir, "dir"), filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	if got := len(names(t, filepath.Join(dir, "moved", "sub"))); got != 20 {
		t.Errorf("moved folder lists %d files", got)
	}
	if keys := mem.Keys(); keys[0] != "moved/" || len(keys) != 21 {
		t.Errorf("keys after the move: %v", keys)
	}
}

func TestXattrsAreUserMetadata(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("doc.txt", []byte("x"), map[string]string{"client": "acme"})
	dir, _ := testMount(t, mem)
	p := filepath.Join(dir, "doc.txt")
	buf := make([]byte, 256)
	n, err := syscall.Getxattr(p, "user.client", buf)
	if err != nil || string(buf[:n]) != "acme" {
		t.Fatalf("user.client = %q, %v", buf[:n], err)
	}
	if err := syscall.Setxattr(p, "user.reviewed-by", []byte("ann"), 0); err != nil {
		t.Fatal(err)
	}
	info, _ := mem.Head(t.Context(), "doc.txt")
	if info.Metadata["reviewed-by"] != "ann" || info.Metadata["client"] != "acme" {
		t.Errorf("metadata after setxattr: %v", info.Metadata)
	}
	n, _ = syscall.Listxattr(p, buf)
	if got := string(buf[:n]); got != "user.client\x00user.reviewed-by\x00user.s3.etag\x00user.s3.storage-class\x00" {
		t.Errorf("listxattr = %q", got)
	}
	if n, err := syscall.Getxattr(p, "user.s3.etag", buf); err != nil || string(buf[:n]) != info.ETag {
		t.Errorf("user.s3.etag = %q, %v; want %q", buf[:n], err, info.ETag)
	}
	for attr, want := range map[string]error{
		"user.mode": syscall.EPERM, "user.s3.etag": syscall.EPERM, "user.Upper": syscall.EINVAL,
		"trusted.x": syscall.ENOTSUP,
	} {
		if err := syscall.Setxattr(p, attr, []byte("v"), 0); !errors.Is(err, want) {
			t.Errorf("setxattr %s: %v, want %v", attr, err, want)
		}
	}
	if err := syscall.Setxattr(p, "user.client", []byte("x"), xattrCreate); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("XATTR_CREATE on an existing name: %v", err)
	}
	if err := syscall.Removexattr(p, "user.client"); err != nil {
		t.Fatal(err)
	}
	if _, err := syscall.Getxattr(p, "user.client", buf); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("removed xattr: %v", err)
	}
	if n, err := syscall.Getxattr(p, "user.s3.storage-class", buf); err != nil || string(buf[:n]) != "STANDARD" {
		t.Errorf("user.s3.storage-class = %q, %v", buf[:n], err)
	}
	if _, err := syscall.Getxattr(p, "security.selinux", buf); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("security.selinux: %v, want ENODATA", err)
	}
	info, _ = mem.Head(t.Context(), "doc.txt")
	if _, ok := info.Metadata["client"]; ok || info.Metadata["reviewed-by"] != "ann" {
		t.Errorf("metadata after removexattr: %v", info.Metadata)
	}
}

// waitUntil polls cond, state that nothing signals (background uploads),
// and fails the test if it does not hold within ten seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestLargeWriteStreamsParts: parts go up while the file is still being
// written; close sends only the tail and completes the upload.
func TestLargeWriteStreamsParts(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.Parts = 1 << 20
	dir, fsys := testMount(t, mem)
	data := make([]byte, 5<<20+1234)
	for i := range data {
		data[i] = byte(i * 7)
	}
	f, err := os.Create(filepath.Join(dir, "video.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 256 << 10 {
		if _, err := f.Write(data[off:min(off+256<<10, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "parts uploaded before close", func() bool { return mem.Counters()[s3backend.OpUploadPart] >= 4 })
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	c := mem.Counters()
	if c[s3backend.OpCreateMultipart] != 1 || c[s3backend.OpUploadPart] != 6 || c[s3backend.OpCompleteMultipart] != 1 ||
		c[s3backend.OpPut] != 0 {
		t.Errorf("requests %v: want one streamed upload of 6 parts", c)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "video.mp4")); !slices.Equal(got, data) {
		t.Error("content read back differs")
	}
	rc, _ := mem.Get(t.Context(), "video.mp4", 0, -1, "")
	stored := make([]byte, len(data)+1)
	n, _ := io.ReadFull(rc, stored)
	if !slices.Equal(stored[:n], data) {
		t.Errorf("S3 holds %d bytes that differ from the %d written", n, len(data))
	}
	if mem.OpenMultiparts() != 0 {
		t.Errorf("%d multipart uploads left open", mem.OpenMultiparts())
	}

	// Renamed while streaming (rename before close): the stream under the
	// old name is abandoned and the file goes up under the new one, so the
	// old name never appears in S3.
	f, err = os.Create(filepath.Join(dir, ".video.mp4.part"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data)
	if err := os.Rename(filepath.Join(dir, ".video.mp4.part"), filepath.Join(dir, "final.mp4")); err != nil {
		t.Fatal(err)
	}
	cost := requestsDuring(mem, func() {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	})
	// The abandoned stream is aborted once its parts in flight end.
	waitUntil(t, "the abandoned stream's abort", func() bool { return mem.Counters()[s3backend.OpAbortMultipart] == 1 })
	after := mem.Counters()
	if cost[s3backend.OpCopy] != 0 || cost[s3backend.OpCompleteMultipart]+cost[s3backend.OpPut] != 1 ||
		mem.OpenMultiparts() != 0 {
		t.Errorf("renamed while streaming: %v, close %v: want the stream aborted and one upload under the new name", after, cost)
	}
	settle(t, fsys)
	if keys := mem.Keys(); !slices.Equal(keys, []string{"final.mp4", "video.mp4"}) {
		t.Errorf("keys %v", keys)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "final.mp4")); !slices.Equal(got, data) {
		t.Error("renamed file's content differs")
	}
}

// TestStreamAbandonedOnRewriteAndFailure: writing again over bytes already
// sent, or a part failing, costs the stream, never the data: close uploads
// the file whole.
func TestStreamAbandonedOnRewriteAndFailure(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.Parts = 1 << 20
	dir, _ := testMount(t, mem)
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i)
	}
	p := filepath.Join(dir, "db.sqlite")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data)
	copy(data, "header rewritten")
	f.WriteAt(data[:16], 0)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	rc, err := mem.Get(t.Context(), "db.sqlite", 0, 16, "")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "header rewritten" {
		t.Errorf("S3 holds %q at the start", b)
	}
	c := mem.Counters()
	if c[s3backend.OpPut] != 1 || c[s3backend.OpCompleteMultipart] != 0 {
		t.Errorf("requests %v: want the stream dropped and one whole upload", c)
	}
	waitUntil(t, "the abandoned upload aborted", func() bool { return mem.OpenMultiparts() == 0 })

	mem.SetFail(func(op, key string) error {
		if op == s3backend.OpUploadPart {
			return errors.New("injected: part lost")
		}
		return nil
	})
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatalf("close after a failed part: %v, want the whole upload to succeed", err)
	}
	if got, _ := os.ReadFile(p); !slices.Equal(got, data) {
		t.Error("content differs after the fallback upload")
	}
	if c := mem.Counters(); c[s3backend.OpPut] != 2 || mem.OpenMultiparts() != 0 {
		t.Errorf("requests %v, open uploads %d", c, mem.OpenMultiparts())
	}
}

// TestDataCacheReadsOnce: a file read (or written) once is served from
// the local data cache afterwards: no GET, even for a new open.
func TestDataCacheReadsOnce(t *testing.T) {
	mem := s3backend.NewMemory()
	data := make([]byte, 40<<20+5)
	for i := range data {
		data[i] = byte(i * 13)
	}
	mem.PutObject("movie.bin", data, nil)
	mem.PutObject("other.bin", data, nil)
	dc, err := cache.OpenData(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := testMountWith(t, mem, Options{Data: dc})
	gets := func() int64 { return mem.Counters()[s3backend.OpGet] }

	// A read in the middle fetches the one chunk it needs.
	f, err := os.Open(filepath.Join(dir, "other.bin"))
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 4096)
	if _, err := f.ReadAt(part, 30<<20); err != nil || !slices.Equal(part, data[30<<20:30<<20+4096]) {
		t.Errorf("ranged read: %v", err)
	}
	f.Close()
	if g := gets(); g != 1 {
		t.Errorf("a 4 KiB read cost %d GETs, want 1 (its MiB)", g)
	}

	if got, err := os.ReadFile(filepath.Join(dir, "movie.bin")); err != nil || !slices.Equal(got, data) {
		t.Fatalf("first read: %v", err)
	}
	first := gets() - 1
	if first != 4 {
		t.Errorf("reading 40 MiB cost %d GETs, want 4: the first read's MiB, then runs of 16 MiB", first)
	}
	if dc.Size() != int64(len(data)) {
		t.Errorf("data cache holds %d bytes, want the whole file", dc.Size())
	}
	before := gets()
	if got, err := os.ReadFile(filepath.Join(dir, "movie.bin")); err != nil || !slices.Equal(got, data) {
		t.Fatalf("second read: %v", err)
	}
	if gets() != before {
		t.Errorf("re-read cost %d GETs, want 0", gets()-before)
	}

	// What this mount wrote is cached too (the staging file, linked),
	// from adoptMin up.
	written := data[:adoptMin]
	if err := os.WriteFile(filepath.Join(dir, "new.bin"), written, 0o644); err != nil {
		t.Fatal(err)
	}
	before = gets()
	if got, _ := os.ReadFile(filepath.Join(dir, "new.bin")); !slices.Equal(got, written) || gets() != before {
		t.Errorf("reading back a written file: %d bytes, %d GETs", len(got), gets()-before)
	}
	// It joins when its last handle is released, which the kernel sends
	// after close returns.
	waitUntil(t, "the written file to join the data cache", func() bool {
		return dc.Size() == int64(len(data)+adoptMin)
	})
	// Removing a file frees its cached copy.
	size := dc.Size()
	os.Remove(filepath.Join(dir, "movie.bin"))
	if dc.Size() != size-int64(len(data)) {
		t.Errorf("cache size %d after rm, want %d", dc.Size(), size-int64(len(data)))
	}
}

// TestPassthroughReadsCachedFiles: with passthrough, a read-only open of a
// cached file is served by the kernel from the cache file; the kernel
// forbids ordinary opens beside it, so a writer gets ETXTBSY until the
// reader closes, and then works at once.
func TestPassthroughReadsCachedFiles(t *testing.T) {
	mem := s3backend.NewMemory()
	body := []byte(strings.Repeat("passthrough ", 100000))
	mem.PutObject("report.pdf", body, nil)
	dc, err := cache.OpenData(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	dir, fsys := testMountWith(t, mem, Options{Data: dc, Passthrough: true})
	p := filepath.Join(dir, "report.pdf")
	if got, err := os.ReadFile(p); err != nil || !slices.Equal(got, body) {
		t.Fatalf("first read: %v", err)
	}
	// That read went through the daemon (the file was not cached yet);
	// passthrough starts once the kernel has released its handle, which
	// it does after close returns.
	file := fsys.root.EmbeddedInode().GetChild("report.pdf").Operations().(*File)
	waitUntil(t, "the first reader's release", func() bool {
		file.mu.Lock()
		defer file.mu.Unlock()
		return file.normalHandles == 0
	})
	gets := mem.Counters()[s3backend.OpGet]
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !slices.Equal(got, body) {
		t.Errorf("passthrough read: %d bytes, %v", len(got), err)
	}
	if _, err := os.OpenFile(p, os.O_WRONLY, 0); !errors.Is(err, syscall.ETXTBSY) {
		t.Errorf("writable open beside a passthrough reader: %v, want ETXTBSY", err)
	}
	r2, err := os.Open(p) // a second reader joins the passthrough
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	r2.Close()
	r.Close()
	if mem.Counters()[s3backend.OpGet] != gets {
		t.Errorf("cached reads sent %d GETs", mem.Counters()[s3backend.OpGet]-gets)
	}
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("writable open after the readers closed: %v", err)
	}
	w.WriteString("!")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(p); len(got) != len(body)+1 || got[len(body)] != '!' {
		t.Errorf("after the append: %d bytes (%v)", len(got), err)
	}
}

// TestRemovalsAreBatched: rm of many files costs one DeleteObjects, the
// files are gone for the mount at once, and a file recreated under a name
// whose delete is still queued is never deleted by it.
func TestRemovalsAreBatched(t *testing.T) {
	mem := s3backend.NewMemory()
	for i := range 50 {
		mem.PutObject(fmt.Sprintf("old/f%02d", i), []byte("x"), nil)
	}
	mem.PutObject("keep/me", []byte("v1"), nil)
	dir, fsys := testMount(t, mem)
	names(t, filepath.Join(dir, "old"))
	names(t, filepath.Join(dir, "keep"))
	cost := requestsDuring(mem, func() {
		if err := os.RemoveAll(filepath.Join(dir, "old")); err != nil {
			t.Fatal(err)
		}
		settle(t, fsys)
	})
	// The emptied implicit folder would get its marker (as any emptied
	// folder does), but rmdir comes before it is written: no PUT at all.
	if cost[s3backend.OpDeleteBatch] != 1 || cost[s3backend.OpDelete] != 0 || cost[s3backend.OpList] != 1 || cost[s3backend.OpPut] != 0 {
		t.Errorf("rm -r of 50 files: %v, want the readdir's LIST and one DeleteObjects", cost)
	}
	if keys := mem.Keys(); !slices.Equal(keys, []string{"keep/me"}) {
		t.Errorf("keys after rm -r: %v", keys)
	}

	// Removed, then written again at once: the queued delete goes first.
	p := filepath.Join(dir, "keep", "me")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("removed file still visible: %v", err)
	}
	if got := names(t, filepath.Join(dir, "keep")); len(got) != 0 {
		t.Errorf("listing after rm: %v", got)
	}
	if err := os.WriteFile(p, []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	rc, err := mem.Get(t.Context(), "keep/me", 0, -1, "")
	if err != nil {
		t.Fatalf("recreated file lost to the queued delete: %v", err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "v2" {
		t.Errorf("recreated file holds %q", b)
	}
}

// TestFolderAttributesAreWrittenOnce is rsync -a's pattern for a folder:
// mkdir, chmod, files inside, utimes. The marker is written once, with the
// final attributes; a folder made and removed in between costs nothing.
func TestFolderAttributesAreWrittenOnce(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	sub := filepath.Join(dir, "docs")
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	cost := requestsDuring(mem, func() {
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(sub, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(sub, "scratch"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(sub, "scratch")); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(sub, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	})
	if total := cost[s3backend.OpPut] + cost[s3backend.OpDelete] + cost[s3backend.OpDeleteBatch]; total != 0 {
		t.Errorf("mkdir, chmod, utimes before MetaDelay sent %v, want nothing yet", cost)
	}
	info, err := os.Stat(sub)
	if err != nil || info.Mode() != os.ModeDir|0o750 || !info.ModTime().Equal(mtime) {
		t.Fatalf("pending folder shows %v %v (%v), want drwxr-x--- at %v", info.Mode(), info.ModTime(), err, mtime)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"docs/"}) {
		t.Errorf("listing with a pending folder: %v", got)
	}

	// fsync of a folder writes what is pending: one PUT, final attributes.
	cost = requestsDuring(mem, func() {
		d, err := os.Open(sub)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
	})
	if cost[s3backend.OpPut] != 1 {
		t.Errorf("fsync of the folder: %v, want one PUT", cost)
	}
	head, err := mem.Head(t.Context(), "docs/")
	if err != nil {
		t.Fatal(err)
	}
	if m := decodeMeta(head); m.Mode != syscall.S_IFDIR|0o750 || !m.Mtime.Equal(mtime) {
		t.Errorf("marker holds mode %o mtime %v, want %o %v", m.Mode, m.Mtime, syscall.S_IFDIR|0o750, mtime)
	}
	if keys := mem.Keys(); !slices.Equal(keys, []string{"docs/"}) {
		t.Errorf("keys: %v, want only the marker (the scratch folder never reached S3)", keys)
	}

	// A failed rmdir leaves the waiting attributes alone.
	full := filepath.Join(dir, "full")
	if err := os.Mkdir(full, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(full); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("rmdir of a folder holding a file: %v, want ENOTEMPTY", err)
	}
	settle(t, fsys)
	if head, err := mem.Head(t.Context(), "full/"); err != nil || decodeMeta(head).Mode != syscall.S_IFDIR|0o711 {
		t.Errorf("marker after a failed rmdir: %+v, %v; want mode 0711", head, err)
	}

	// Left alone, a pending marker is written after MetaDelay.
	if err := os.Chmod(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the chmod to reach the marker", func() bool {
		head, err := mem.Head(t.Context(), "docs/")
		return err == nil && decodeMeta(head).Mode == syscall.S_IFDIR|0o700
	})
	settle(t, fsys)
}

// TestRecursiveWalkListsAhead: once a readdir lands in a subfolder of the
// folder read before it (ls -R, find), the next walkAhead subfolders are
// listed in the background, and the window moves with the walk: every
// folder is listed once, and the walk itself mostly waits for nothing.
func TestRecursiveWalkListsAhead(t *testing.T) {
	mem := s3backend.NewMemory()
	const subs = 40
	for i := range subs {
		mem.PutObject(fmt.Sprintf("tree/d%02d/f", i), []byte("x"), map[string]string{"mode": "33188"})
	}
	dir, fsys := testMount(t, mem)
	names(t, filepath.Join(dir, "tree"))
	names(t, filepath.Join(dir, "tree", "d00"))
	// The root, tree/ and d00/, then the window: d01 to d16.
	waitUntil(t, "the next subfolders to be listed", func() bool {
		return mem.Counters()[s3backend.OpList] >= 3+walkAhead
	})
	for i := range subs {
		_, fresh := fsys.cache.Listing(fmt.Sprintf("tree/d%02d/", i))
		if want := i <= walkAhead; fresh != want {
			t.Errorf("d%02d listed before the walk reached it: %v, want %v", i, fresh, want)
		}
	}
	for i := 1; i < subs; i++ {
		if got := names(t, filepath.Join(dir, "tree", fmt.Sprintf("d%02d", i))); !slices.Equal(got, []string{"f"}) {
			t.Errorf("d%02d lists %v", i, got)
		}
	}
	// Whatever the walk met on its way, each folder was listed once, and
	// that listing showed it has no marker, so no folder was HEADed; the
	// files, whose names were all the walk read, were never HEADed.
	if c := mem.Counters(); c[s3backend.OpList] != 2+subs || c[s3backend.OpHead] != 0 {
		t.Errorf("%v, want one LIST per folder (%d) and no HEAD", c, 2+subs)
	}
}

// TestNewFolderRenamedCostsNothing is a file manager's "New Folder", then
// named by the user: the folder only this mount knows moves, and its one
// marker is written under the final name.
func TestNewFolderRenamedCostsNothing(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	names(t, dir)
	untitled, named := filepath.Join(dir, "Untitled Folder"), filepath.Join(dir, "Invoices")
	cost := requestsDuring(mem, func() {
		if err := os.Mkdir(untitled, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(untitled, named); err != nil {
			t.Fatal(err)
		}
	})
	if len(cost) != 0 {
		t.Errorf("mkdir and rename of a new folder cost %v, want nothing yet", cost)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"Invoices/"}) {
		t.Errorf("listing after the rename: %v", got)
	}
	if err := os.WriteFile(filepath.Join(named, "march.pdf"), []byte("%PDF"), 0o644); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	if keys := mem.Keys(); !slices.Equal(keys, []string{"Invoices/", "Invoices/march.pdf"}) {
		t.Errorf("keys: %v, want the marker under the final name and the file", keys)
	}
	// Once its marker is in S3 the folder moves the ordinary way.
	if err := os.Rename(named, filepath.Join(dir, "Paid")); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	if keys := mem.Keys(); !slices.Equal(keys, []string{"Paid/", "Paid/march.pdf"}) {
		t.Errorf("keys after moving the written folder: %v", keys)
	}
}

// TestFolderMarkerWriteFailure: a marker S3 refuses makes fsync of a folder
// fail with EIO and stays waiting; the next fsync writes it.
func TestFolderMarkerWriteFailure(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, _ := testMount(t, mem)
	sub := filepath.Join(dir, "reports")
	if err := os.Mkdir(sub, 0o750); err != nil {
		t.Fatal(err)
	}
	mem.SetFail(func(op, key string) error {
		if op == s3backend.OpPut && key == "reports/" {
			return errors.New("injected: service unavailable")
		}
		return nil
	})
	fsyncDir := func() error {
		d, err := os.Open(sub)
		if err != nil {
			return err
		}
		defer d.Close()
		return d.Sync()
	}
	if err := fsyncDir(); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync with the marker refused: %v, want EIO", err)
	}
	if info, err := os.Stat(sub); err != nil || info.Mode() != os.ModeDir|0o750 {
		t.Errorf("folder after the failed write: %v %v", info, err)
	}
	mem.SetFail(nil)
	if err := fsyncDir(); err != nil {
		t.Fatalf("fsync once S3 accepts again: %v", err)
	}
	head, err := mem.Head(t.Context(), "reports/")
	if err != nil || decodeMeta(head).Mode != syscall.S_IFDIR|0o750 {
		t.Errorf("marker: %+v, %v; want mode 0750", head, err)
	}
}

// TestLargeRemovalGoesInParallelBatches: rm -r of 600 files sends their
// deletes as parallel batches, and the folders' markers only after every
// file, deepest first (servers that store folders as directories refuse to
// delete a marker whose folder still holds something).
func TestLargeRemovalGoesInParallelBatches(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("big/", nil, map[string]string{"mode": "16877"})
	mem.PutObject("big/sub/", nil, map[string]string{"mode": "16877"})
	for i := range 600 {
		mem.PutObject(fmt.Sprintf("big/sub/f%03d", i), []byte("x"), nil)
	}
	dir, fsys := testMount(t, mem)
	names(t, filepath.Join(dir, "big", "sub"))
	var mu sync.Mutex
	var firstKeys []string
	mem.SetFail(func(op, key string) error {
		if op == s3backend.OpDeleteBatch || op == s3backend.OpDelete {
			mu.Lock()
			firstKeys = append(firstKeys, key)
			mu.Unlock()
		}
		return nil
	})
	if err := os.RemoveAll(filepath.Join(dir, "big")); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	if keys := mem.Keys(); len(keys) != 0 {
		t.Errorf("left in S3: %v", keys)
	}
	// 600 files: batches of at most 250 (≥ 3), then the two markers,
	// big/sub/ first (in one request, or in two when a batch's worth of
	// files went while rm was still removing).
	files := slices.IndexFunc(firstKeys, func(k string) bool { return strings.HasSuffix(k, "/") })
	if files < 3 || firstKeys[files] != "big/sub/" {
		t.Errorf("delete requests began with %v, want ≥ 3 batches of files, then the markers from big/sub/", firstKeys)
	}
	for _, k := range firstKeys[max(files, 0):] {
		if !strings.HasSuffix(k, "/") {
			t.Errorf("files (%s) went after a marker: %v", k, firstKeys)
		}
	}
}

// TestTypeSniffReadsLittle: a file manager checking a file's type reads
// its first KiB, on every view. The first look fetches the MiB it touches,
// not a 16 MiB run, and the second is served from what the first kept.
func TestTypeSniffReadsLittle(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("video.mkv", make([]byte, 80<<20), nil)
	dc, err := cache.OpenData(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := testMountWith(t, mem, Options{Data: dc})
	sniff := func() {
		t.Helper()
		out, err := exec.Command("head", "-c", "4096", filepath.Join(dir, "video.mkv")).Output()
		if err != nil || len(out) != 4096 {
			t.Fatalf("head -c 4096: %d bytes, %v", len(out), err)
		}
	}
	sniff()
	gets := mem.Counters()[s3backend.OpGet]
	sniff()
	if again := mem.Counters()[s3backend.OpGet] - gets; again != 0 {
		t.Errorf("the second look sent %d GETs, want 0", again)
	}
	if read := mem.BytesServed(); read > 4<<20 {
		t.Errorf("two looks read %d bytes from S3, want ≤ 4 MiB", read)
	}
}
