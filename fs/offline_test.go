package fs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/s3drive/s3drive/s3backend"
)

// TestOfflineLookupSeesOwnChanges: while S3 is unreachable, lookups are
// answered from the caches, and what this mount made since it listed the
// folder wins over that (older) listing.
func TestOfflineLookupSeesOwnChanges(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("old.txt", []byte("old"), nil)
	dir, fsys := testMountWith(t, mem, Options{MetaDelay: time.Hour})
	if _, err := os.ReadDir(dir); err != nil { // the root's listing, cached
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Listed again from S3, which does not show "sub" yet: its marker
	// waits (MetaDelay), and then the outage keeps it waiting.
	if _, _, err := fsys.fetchListing(context.Background(), "", 0); err != nil {
		t.Fatal(err)
	}
	mem.SetOffline(true)
	mem.SetFail(func(op, key string) error { return s3backend.ErrUnreachable })
	before := mem.Counters()
	for name, want := range map[string]kind{"sub": kindDir, "a.txt": kindFile, "old.txt": kindFile} {
		res, err := fsys.resolve(context.Background(), "", name)
		if err != nil || res.kind != want {
			t.Errorf("offline lookup of %s: kind %d, %v; want kind %d", name, res.kind, err, want)
		}
	}
	if _, err := fsys.resolve(context.Background(), "", "never.txt"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("offline lookup of a name the listing lacks: %v, want ENOENT", err)
	}
	if got := mem.Counters(); total(got)-total(before) != 0 {
		t.Errorf("offline lookups sent requests: %v -> %v", before, got)
	}
}

func total(c map[string]int64) (n int64) {
	for _, v := range c {
		n += v
	}
	return n
}
