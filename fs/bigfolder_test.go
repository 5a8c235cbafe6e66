package fs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/s3drive/s3drive/s3backend"
)

// fillMemory writes n objects dir/f0000… as another client would.
func fillMemory(mem *s3backend.Memory, dir string, n int) {
	for i := range n {
		mem.PutObject(fmt.Sprintf("%s/f%04d", dir, i), []byte("x"), nil)
	}
}

// TestNamesOnlySendsNoHead: reading a folder's names (READDIRPLUS
// included) costs its listing and nothing else; the attributes of objects
// never seen are fetched when asked for, once, and then a second pass
// costs nothing.
func TestNamesOnlySendsNoHead(t *testing.T) {
	mem := s3backend.NewMemory()
	fillMemory(mem, "d", 50)
	dir, _ := testMount(t, mem)
	folder := filepath.Join(dir, "d")
	// The lookup of d lists the root; d has no marker, which its own
	// listing shows without a HEAD, and that listing then serves readdir.
	got := requestsDuring(mem, func() {
		if _, err := os.Stat(folder); err != nil {
			t.Fatal(err)
		}
		if n := len(names(t, folder)); n != 50 {
			t.Errorf("%d names, want 50", n)
		}
	})
	if got[s3backend.OpHead] != 0 || got[s3backend.OpList] != 2 {
		t.Errorf("names only: %v, want 2 LISTs (the root, d) and no HEAD", got)
	}
	got = requestsDuring(mem, func() {
		for i := range 50 {
			if fi, err := os.Lstat(filepath.Join(folder, fmt.Sprintf("f%04d", i))); err != nil || fi.Size() != 1 {
				t.Fatalf("lstat f%04d: %v, %v", i, fi, err)
			}
		}
	})
	if got[s3backend.OpHead] != 50 || got[s3backend.OpList] != 0 {
		t.Errorf("lstat of each: %v, want 50 HEAD and no LIST", got)
	}
	got = requestsDuring(mem, func() {
		names(t, folder)
		for i := range 50 {
			os.Lstat(filepath.Join(folder, fmt.Sprintf("f%04d", i)))
		}
	})
	if len(got) != 0 {
		t.Errorf("second pass: %v, want no request", got)
	}
}

// TestScanStaysAheadOfTheWalker: once a walk of a big folder shows itself
// (two lookups needing a HEAD), the next scanWindow entries are HEADed in
// the background and every later lookup moves the window by one: the
// HEADs never run more than scanWindow ahead of the walker, however big
// the folder.
func TestScanStaysAheadOfTheWalker(t *testing.T) {
	mem := s3backend.NewMemory()
	fillMemory(mem, "big", 2000)
	dir, fsys := testMount(t, mem)
	folder := filepath.Join(dir, "big")
	names(t, folder)
	for i := range 3 {
		if _, err := os.Lstat(filepath.Join(folder, fmt.Sprintf("f%04d", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the scan's HEADs to finish", func() bool {
		fsys.pendingMu.Lock()
		defer fsys.pendingMu.Unlock()
		return len(fsys.pending) == 0
	})
	// f0000 and f0001 (the second starts the scan), the window after
	// f0001 (f0002…f0257), and one more as the walker reached f0002. The
	// folder has no marker: its listing's first page shows that.
	if got, want := mem.Counters()[s3backend.OpHead], int64(2+scanWindow+1); got != want {
		t.Errorf("%d HEADs after 3 lookups, want %d", got, want)
	}
}

// TestInodeBudgetPrunes: past MaxInodes, the kernel is asked to forget the
// idle file inodes looked up longest ago, and looking them up again costs
// no request.
func TestInodeBudgetPrunes(t *testing.T) {
	mem := s3backend.NewMemory()
	fillMemory(mem, "d", 300)
	dir, fsys := testMountWith(t, mem, Options{MaxInodes: 100})
	folder := filepath.Join(dir, "d")
	stat := func() {
		for i := range 300 {
			if _, err := os.Lstat(filepath.Join(folder, fmt.Sprintf("f%04d", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	stat()
	d := fsys.root.GetChild("d")
	if d == nil {
		t.Fatal("no inode for d")
	}
	waitUntil(t, "the kernel to forget the inodes past the budget", func() bool { return len(d.Children()) <= 100 })
	if got := requestsDuring(mem, stat); len(got) != 0 {
		t.Errorf("looking the forgotten names up again: %v, want no request", got)
	}
}

// TestListingStreams: a readdir returns a folder's first page while the
// next is still on its way, and a lookup of a name that page covered is
// answered from it, with no listing of its own.
func TestListingStreams(t *testing.T) {
	mem := s3backend.NewMemory()
	fillMemory(mem, "d", 600)
	dir, _ := testMountWith(t, mem, Options{ListPageSize: 200})
	folder := filepath.Join(dir, "d")
	if _, err := os.Stat(folder); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var lists atomic.Int32
	mem.SetFail(func(op, key string) error {
		if op == s3backend.OpList && key == "d/" && lists.Add(1) == 2 {
			<-release // the second page waits
		}
		return nil
	})
	defer mem.SetFail(nil)
	f, err := os.Open(folder)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// One getdents: fewer entries than a page, so it needs only the first.
	var first []os.DirEntry
	read := make(chan error, 1)
	go func() {
		var err error
		first, err = f.ReadDir(10)
		read <- err
	}()
	select {
	case err := <-read:
		if err != nil || len(first) != 10 {
			t.Fatalf("first entries: %d, %v", len(first), err)
		}
	case <-time.After(10 * time.Second): // a bound on a failure, not a wait for success
		close(release)
		t.Fatal("the first entries waited for the listing's second page")
	}
	got := requestsDuring(mem, func() {
		if _, err := os.Lstat(filepath.Join(folder, first[0].Name())); err != nil {
			t.Error(err)
		}
	})
	if got[s3backend.OpList] != 0 || got[s3backend.OpHead] != 1 {
		t.Errorf("lookup of a name the first page showed: %v, want 1 HEAD and no LIST", got)
	}
	close(release)
	rest, err := f.ReadDir(-1)
	if err != nil || len(first)+len(rest) != 600 {
		t.Errorf("%d entries in all, %v; want 600", len(first)+len(rest), err)
	}
	if n := lists.Load(); n != 3 {
		t.Errorf("%d listing pages, want 3", n)
	}
}

// TestForgottenFileKeepsItsChanges: the kernel may forget a file whose
// chmod is still waiting to be stored (the inode budget asks it to, and so
// does memory pressure); the change is stored all the same, under the key
// the file had.
func TestForgottenFileKeepsItsChanges(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("d/f", []byte("x"), nil)
	dir, fsys := testMountWith(t, mem, Options{MetaDelay: time.Hour})
	path := filepath.Join(dir, "d", "f")
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	n := fsys.root.GetChild("d").GetChild("f")
	file := n.Operations().(*File)
	if errno := n.NotifyPrune([]*gofs.Inode{n}); errno != 0 {
		t.Fatalf("prune: %v", errno)
	}
	waitUntil(t, "the kernel to forget the file", file.forgotten.Load)
	if err := fsys.FlushAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	head, err := mem.Head(t.Context(), "d/f")
	if err != nil || decodeMeta(head).Mode != syscall.S_IFREG|0o600 {
		t.Errorf("object after its forgotten file was flushed: %+v, %v; want mode 0600", decodeMeta(head), err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("looked up again: %v, %v; want 0600", fi, err)
	}
}

// TestNamesOfNeverSeenSubfolders: ls -f of each of 10 subfolders of 30
// files another client wrote, on a fresh mount. ls looks each subfolder
// up and stats it, then reads its names. In a tree written without folder
// markers that costs no HEAD at all: each subfolder's listing shows it has
// no marker (so its attributes are the defaults) and then serves readdir.
// Where markers exist, each subfolder costs the one HEAD that reads its
// stored attributes, which ls then shows.
func TestNamesOfNeverSeenSubfolders(t *testing.T) {
	for _, markers := range []bool{false, true} {
		t.Run(fmt.Sprintf("markers=%v", markers), func(t *testing.T) {
			mem := s3backend.NewMemory()
			if markers {
				mem.PutObject("folder/", nil, map[string]string{"mode": "16877"})
			}
			for i := range 10 {
				sub := fmt.Sprintf("folder/sub%02d", i)
				if markers {
					mem.PutObject(sub+"/", nil, map[string]string{"mode": "16832", "mtime": "1000000000"}) // 0700
				}
				fillMemory(mem, sub, 30)
			}
			dir, _ := testMount(t, mem)
			got := requestsDuring(mem, func() {
				for i := range 10 {
					out, err := exec.Command("ls", "-f", filepath.Join(dir, "folder", fmt.Sprintf("sub%02d", i))).Output()
					if err != nil {
						t.Fatal(err)
					}
					if n := len(strings.Fields(string(out))); n != 32 { // . and ..
						t.Errorf("ls -f sub%02d: %d names, want 32", i, n)
					}
				}
			})
			wantHeads := int64(0)
			if markers {
				wantHeads = 1 + 10 // folder/, then each subfolder's attributes
			}
			if got[s3backend.OpHead] != wantHeads {
				t.Errorf("ls -f of 10 subfolders sent %v, want %d HEAD", got, wantHeads)
			}
			if got[s3backend.OpList] != 12 { // the root, folder/ and each subfolder once
				t.Errorf("ls -f of 10 subfolders sent %v, want 12 LISTs", got)
			}
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(dir, "folder", "sub03"), &st); err != nil {
				t.Fatal(err)
			}
			want := uint32(0o755)
			if markers {
				want = 0o700
			}
			if st.Mode&0o777 != want {
				t.Errorf("sub03's mode %o, want %o", st.Mode&0o777, want)
			}
		})
	}
}
