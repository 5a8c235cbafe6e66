package cache

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func fill(t *testing.T, d *Data, key, etag, body string) {
	t.Helper()
	fl, err := d.Begin(key, etag, int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fl.File.WriteAt([]byte(body), 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(fl); err != nil {
		t.Fatal(err)
	}
	fl.File.Close()
}

func cached(d *Data, key, etag string) string {
	f, ok := d.Open(key, etag)
	if !ok {
		return "<miss>"
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return string(b)
}

func TestDataCacheVersionsEvictionAndReopen(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenData(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, d, "a.txt", "e1", "aaaa")
	if got := cached(d, "a.txt", "e1"); got != "aaaa" {
		t.Errorf("hit: %q", got)
	}
	if got := cached(d, "a.txt", "e2"); got != "<miss>" {
		t.Errorf("another ETag must miss: %q", got)
	}
	fill(t, d, "a.txt", "e2", "AAAA") // replaces the old version
	fill(t, d, "b.txt", "e1", "bbbb")
	if got := cached(d, "a.txt", "e1"); got != "<miss>" || d.Size() != 8 {
		t.Errorf("old version kept: %q, size %d", got, d.Size())
	}
	cached(d, "a.txt", "e2")          // a is now the most recently used
	fill(t, d, "c.txt", "e1", "cccc") // 12 > 10: b goes
	if cached(d, "b.txt", "e1") != "<miss>" || cached(d, "a.txt", "e2") != "AAAA" || d.Size() != 8 {
		t.Errorf("eviction: b %q, a %q, size %d", cached(d, "b.txt", "e1"), cached(d, "a.txt", "e2"), d.Size())
	}

	// A partial download left by a crash is removed at reopen.
	os.WriteFile(filepath.Join(dir, "x-y-1"+partSuffix), []byte("partial"), 0o600)
	d.Forget("c.txt")
	d2, err := OpenData(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	if cached(d2, "a.txt", "e2") != "AAAA" || cached(d2, "c.txt", "e1") != "<miss>" || d2.Size() != 4 {
		t.Errorf("reopened: a %q, c %q, size %d", cached(d2, "a.txt", "e2"), cached(d2, "c.txt", "e1"), d2.Size())
	}
	if _, err := os.Stat(filepath.Join(dir, "x-y-1"+partSuffix)); !os.IsNotExist(err) {
		t.Errorf("partial download kept: %v", err)
	}
	// A staged file is adopted by hard link (same filesystem as the cache).
	local := filepath.Join(filepath.Dir(dir), "adopt-me")
	os.WriteFile(local, []byte("dd"), 0o600)
	if err := d2.Adopt("d.txt", "e9", local, 2); err != nil {
		t.Fatal(err)
	}
	os.Remove(local)
	if cached(d2, "d.txt", "e9") != "dd" {
		t.Error("adopted file not served after its original name was removed")
	}
}

// TestReserveAllocatesOnlyTheRange: a chunk about to be downloaded gets its
// disk blocks at once; the rest of the entry stays sparse, so a read in the
// middle of a large file takes disk space for its chunk only.
func TestReserveAllocatesOnlyTheRange(t *testing.T) {
	d, err := OpenData(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	const size, chunk = 64 << 20, 16 << 20
	fl, err := d.Begin("video.mp4", "e1", size)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort(fl)
	allocated := func() int64 {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(fl.File.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	if a := allocated(); a != 0 {
		t.Fatalf("a new entry of %d bytes has %d allocated, want a sparse file", size, a)
	}
	fl.Reserve(chunk, chunk)
	if a := allocated(); a < chunk || a > chunk+1<<20 {
		t.Errorf("after reserving one 16 MiB chunk, %d bytes allocated", a)
	}
	if st, _ := fl.File.Stat(); st.Size() != size {
		t.Errorf("size %d after reserve, want %d", st.Size(), size)
	}
}
