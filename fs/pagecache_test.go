package fs

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"

	"github.com/s3drive/s3drive/s3backend"
)

// TestOpenReaderSeesWrites: a write-only handle bypasses the page cache,
// yet a reader that has the file open (and its pages cached) sees every
// change, as on a local disk.
func TestOpenReaderSeesWrites(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, _ := testMount(t, mem)
	p := filepath.Join(dir, "notes.txt")
	before := bytes.Repeat([]byte("a"), 128<<10)
	if err := os.WriteFile(p, before, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make([]byte, len(before))
	if _, err := r.ReadAt(got, 0); err != nil || !bytes.Equal(got, before) {
		t.Fatalf("first read: %v", err)
	}

	// The test means something only if the reader's pages are cached.
	if n := residentPages(t, r, 0, len(before)); n == 0 {
		t.Fatal("the reader's pages are not in the page cache")
	}

	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	patch, tail := bytes.Repeat([]byte("b"), 4096), bytes.Repeat([]byte("c"), 4096)
	if _, err := w.WriteAt(patch, 8192); err != nil {
		t.Fatal(err)
	}
	// Same size: the kernel has no attribute change to notice.
	want := append(append(append([]byte{}, before[:8192]...), patch...), before[8192+4096:]...)
	if _, err := r.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Errorf("open reader does not see the patch (%v)", err)
	}
	if _, err := w.WriteAt(tail, int64(len(before))); err != nil {
		t.Fatal(err)
	}
	want = append(want, tail...)
	got = make([]byte, len(want))
	n, err := r.ReadAt(got, 0)
	if n != len(want) || !bytes.Equal(got, want) {
		t.Errorf("open reader read %d bytes (%v); want %d with the writer's patch and tail", n, err, len(want))
	}
	if st, err := r.Stat(); err != nil || st.Size() != int64(len(want)) {
		t.Errorf("open reader's stat: %v, %v; want size %d", st.Size(), err, len(want))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, mem, "notes.txt"); !bytes.Equal(got, want) {
		t.Errorf("S3 holds %d bytes, want the %d written", len(got), len(want))
	}
}

// TestEvictWritten: an uploaded range leaves memory but not the disk.
func TestEvictWritten(t *testing.T) {
	dir := t.TempDir()
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		t.Fatal(err)
	}
	if sfs.Type == unix.TMPFS_MAGIC {
		t.Skip("tmpfs keeps every page in memory: nothing to evict")
	}
	f, err := os.Create(filepath.Join(dir, "stage"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const half = 4 << 20
	data := bytes.Repeat([]byte("0123456789abcdef"), 2*half/16)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	evictWritten(f, 0, half)

	pages := half / os.Getpagesize()
	if n := residentPages(t, f, 0, half); n != 0 {
		t.Errorf("%d pages of the evicted range still in memory", n)
	}
	if n := residentPages(t, f, half, half); n != pages {
		t.Errorf("%d of %d pages of the range not evicted are in memory", n, pages)
	}
	back := make([]byte, len(data))
	if _, err := f.ReadAt(back, 0); err != nil || !bytes.Equal(back, data) {
		t.Errorf("content after eviction differs (%v)", err)
	}
}

// TestStreamEvictsSentParts: parts sent while the file is written leave
// memory; the tail, which close waits for, does not pay for a writeback.
func TestStreamEvictsSentParts(t *testing.T) {
	s := &stream{next: 1}
	due := s.duePartsLocked(5<<20+10, 2<<20)
	if len(due) != 2 || !due[0].evict || !due[1].evict {
		t.Errorf("parts due %+v: want two, both evicted once sent", due)
	}
}

// residentPages counts the pages of f's size bytes from off (page
// aligned) that are in the page cache.
func residentPages(t *testing.T, f *os.File, off, size int) int {
	t.Helper()
	m, err := unix.Mmap(int(f.Fd()), int64(off), size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (size+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(size), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestLargeReadsAreQuiet: 1 MiB read replies go out as plain writes. go-fuse
// would first try a pipe, which cannot hold a 1 MiB reply with its header,
// and log a line for every MiB read.
func TestLargeReadsAreQuiet(t *testing.T) {
	mem := s3backend.NewMemory()
	data := bytes.Repeat([]byte("0123456789abcdef"), 32<<20/16)
	mem.PutObject("big.bin", data, nil)
	var logged lockedBuffer
	dir, _ := testMountTweaked(t, mem, Options{}, func(o *fs.Options) {
		o.Logger = log.New(&logged, "", 0)
		o.MountOptions.Logger = o.Logger
	})
	// The kernel's default read-ahead asks for 128 KiB at a time.
	if err := RaiseReadAhead(dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "big.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
	if out := logged.String(); out != "" {
		t.Errorf("reading 32 MiB logged:\n%s", out)
	}
}

// lockedBuffer is a bytes.Buffer written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNewFileMapsThroughReadWriteHandle: a read-write handle that starts a
// file empty (Go's os.Create, of a new file or over an existing one)
// bypasses the page cache like a write-only one, yet the program can still
// read back and map what it wrote, and what it changes through the mapping
// is what S3 gets.
//
// The mapping is used by a child process (mapThrough), given the handle's
// descriptor: in this process a page fault on the mount can wait for the
// FUSE server in this same process while the Go runtime stops every
// goroutine for a GC, which waits for the faulting thread: a deadlock of
// the test, not of the drive (the drive runs in its own process).
func TestNewFileMapsThroughReadWriteHandle(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	if !fsys.directMmap.Load() {
		t.Fatal("the kernel (6.6+) did not grant mmap of direct I/O files")
	}
	f, err := os.Create(filepath.Join(dir, "report.dat"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	body := bytes.Repeat([]byte("abcdefgh"), 4096) // 32 KiB
	if _, err := f.Write(body); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(body))
	if _, err := f.ReadAt(back, 0); err != nil || !bytes.Equal(back, body) {
		t.Fatalf("read back through the writer: %v", err)
	}
	change := "changed through the mapping"
	mapThrough(t, f, len(body), body, 4096, change)
	copy(body[4096:], change)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, mem, "report.dat"); !bytes.Equal(got, body) {
		t.Errorf("S3 holds %d bytes that differ from what was written and mapped", len(got))
	}

	// Created again over the object (O_TRUNC, which the open now sees):
	// the same, and only the new bytes remain.
	g, err := os.Create(filepath.Join(dir, "report.dat"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if st, _ := g.Stat(); st.Size() != 0 {
		t.Errorf("size %d after O_TRUNC, want 0", st.Size())
	}
	if _, err := g.WriteString("short"); err != nil {
		t.Fatal(err)
	}
	mapThrough(t, g, 5, []byte("short"), 0, "")
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, mem, "report.dat"); string(got) != "short" {
		t.Errorf("S3 holds %q after the truncating create, want %q", got, "short")
	}
}

// mapThrough has a child process map size bytes of f shared, check that
// the mapping shows want, write change at off through it (if any), msync
// and unmap.
func mapThrough(t *testing.T, f *os.File, size int, want []byte, off int, change string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMapHelper$")
	cmd.ExtraFiles = []*os.File{f} // fd 3
	cmd.Env = append(os.Environ(), "S3DRIVE_MAP_HELPER=1", fmt.Sprintf("S3DRIVE_MAP_SIZE=%d", size),
		"S3DRIVE_MAP_WANT="+string(want), fmt.Sprintf("S3DRIVE_MAP_OFF=%d", off), "S3DRIVE_MAP_CHANGE="+change)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "mapped ok") {
		t.Fatalf("the mapping, in a child process: %v\n%s", err, out)
	}
}

// TestMapHelper is mapThrough's child; it does nothing in a normal run.
func TestMapHelper(t *testing.T) {
	if os.Getenv("S3DRIVE_MAP_HELPER") != "1" {
		return
	}
	size, _ := strconv.Atoi(os.Getenv("S3DRIVE_MAP_SIZE"))
	off, _ := strconv.Atoi(os.Getenv("S3DRIVE_MAP_OFF"))
	change := os.Getenv("S3DRIVE_MAP_CHANGE")
	m, err := unix.Mmap(3, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap of a file the handle created: %v", err)
	}
	if string(m) != os.Getenv("S3DRIVE_MAP_WANT") {
		t.Fatal("the mapping shows other bytes than were written")
	}
	if change != "" {
		copy(m[off:], change)
		if err := unix.Msync(m, unix.MS_SYNC); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Munmap(m); err != nil {
		t.Fatal(err)
	}
	fmt.Println("mapped ok")
}

// stored is what S3 holds under key.
func stored(t *testing.T, mem *s3backend.Memory, key string) []byte {
	t.Helper()
	rc, err := mem.Get(t.Context(), key, 0, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
