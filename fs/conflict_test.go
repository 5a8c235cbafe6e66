package fs

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/s3drive/s3drive/s3backend"
)

// conflictedCopies returns the keys of mem that are conflicted copies of
// name, with their content.
func conflictedCopies(t *testing.T, mem *s3backend.Memory, stem string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range mem.Keys() {
		if strings.HasPrefix(k, stem+" (conflicted copy ") {
			out[k] = readObject(t, mem, k)
		}
	}
	return out
}

// TestOverwriteElsewhereKeepsBoth: a file open here is overwritten by
// another client; the close here succeeds, S3 keeps the other version at
// the name and this mount's at a sibling, and the mount shows both.
func TestOverwriteElsewhereKeepsBoth(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	p := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(p, []byte("version 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	mem.PutObject("f.txt", []byte("B's version"), nil) // another client
	puts := mem.Counters()[s3backend.OpPut]
	// Every byte rewritten: what the sibling holds does not depend on
	// whether the old version was still at hand to patch.
	if _, err := f.WriteAt([]byte("A's new text"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close after the file changed elsewhere: %v, want success (the data is kept)", err)
	}
	if got := readObject(t, mem, "f.txt"); got != "B's version" {
		t.Errorf("S3 holds %q at the name, want the other writer's", got)
	}
	copies := conflictedCopies(t, mem, "f")
	if len(copies) != 1 {
		t.Fatalf("conflicted copies %v, want one", copies)
	}
	for k, v := range copies {
		if v != "A's new text" || !strings.HasSuffix(k, ").txt") {
			t.Errorf("%s holds %q, want this mount's bytes", k, v)
		}
	}
	// The failed PUT rides on the request already sent: one refused, one
	// to the sibling.
	if n := mem.Counters()[s3backend.OpPut] - puts; n != 2 {
		t.Errorf("%d PUTs, want 2 (refused, then the sibling)", n)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "B's version" {
		t.Errorf("the mount shows %q, %v at the name, want the other writer's version", b, err)
	}
	if got := names(t, dir); len(got) != 2 || !slices.Contains(got, "f.txt") {
		t.Errorf("the folder lists %v, want the file and its conflicted copy", got)
	}
	if n, list := fsys.Conflicts(); n != 1 || list[0].Path != "f.txt" {
		t.Errorf("conflicts %d %v", n, list)
	}
}

// TestRemovalKeepsNewerVersion: a removal of a file another client has
// overwritten since it was read deletes nothing.
func TestRemovalKeepsNewerVersion(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	p := filepath.Join(dir, "g.txt")
	if err := os.WriteFile(p, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	mem.PutObject("g.txt", []byte("B's"), nil)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := fsys.FlushAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	if got := readObject(t, mem, "g.txt"); got != "B's" {
		t.Errorf("after the removal S3 holds %q, want the other writer's version kept", got)
	}
}

// TestBothCreateTheSameName: a file created here under a name another
// client took since goes beside it.
func TestBothCreateTheSameName(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, _ := testMount(t, mem)
	if _, err := os.Stat(filepath.Join(dir, "new.txt")); !os.IsNotExist(err) {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "new.txt"))
	if err != nil {
		t.Fatal(err)
	}
	mem.PutObject("new.txt", []byte("theirs"), nil)
	f.WriteString("ours")
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := readObject(t, mem, "new.txt"); got != "theirs" {
		t.Errorf("the name holds %q", got)
	}
	if c := conflictedCopies(t, mem, "new"); len(c) != 1 {
		t.Errorf("conflicted copies %v, want ours beside theirs", c)
	}
}

// TestOverwriteOptionLastWriterWins: --on-conflict overwrite sends no
// conditions.
func TestOverwriteOptionLastWriterWins(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, _ := testMountWith(t, mem, Options{Overwrite: true})
	p := filepath.Join(dir, "f.txt")
	os.WriteFile(p, []byte("v1"), 0o644)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mem.PutObject("f.txt", []byte("B's"), nil)
	f.WriteString("A's")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readObject(t, mem, "f.txt"); got != "A's" || len(mem.Keys()) != 1 {
		t.Errorf("S3 holds %q in %v, want the last writer's alone", got, mem.Keys())
	}
}

// TestChmodOfFileChangedElsewhere: an attribute change whose object was
// rewritten elsewhere does not put the old attributes on the new content.
func TestChmodOfFileChangedElsewhere(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	p := filepath.Join(dir, "h.txt")
	os.WriteFile(p, []byte("v1"), 0o644)
	mem.PutObject("h.txt", []byte("B's"), map[string]string{"mode": "33188"})
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fsys.FlushAll(t.Context()); err != nil {
		t.Fatalf("storing the attribute change: %v", err)
	}
	info, err := mem.Head(t.Context(), "h.txt")
	if err != nil || info.Size != 3 || info.Metadata["mode"] != "33188" {
		t.Errorf("S3 holds %+v, %v; want B's version with B's attributes", info, err)
	}
}

// lostAnswer stores the first upload of a key (every one, with every)
// and then reports a failure, as a connection cut after the request
// reached the server does.
type lostAnswer struct {
	*s3backend.Memory
	mu    sync.Mutex
	lost  map[string]bool
	every bool
	fixed bool // answers are no longer lost
}

func (l *lostAnswer) Upload(ctx context.Context, key string, r io.ReaderAt, size int64, opts s3backend.PutOptions) (s3backend.ObjectInfo, error) {
	info, err := l.Memory.Upload(ctx, key, r, size, opts)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && !l.fixed && (l.every || !l.lost[key]) {
		l.lost[key] = true
		return s3backend.ObjectInfo{}, errors.New("connection reset after the request was sent")
	}
	return info, err
}

// TestUnansweredUploadIsNoConflict: an upload that landed without its
// answer, then a change and a second upload: the second replaces the
// first (it is this mount's own), no conflicted copy.
func TestUnansweredUploadIsNoConflict(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, _ := testMountWith(t, mem, Options{Backend: &lostAnswer{Memory: mem, lost: map[string]bool{}}})
	f, err := os.Create(filepath.Join(dir, "doc.txt"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("first")
	if err := f.Sync(); err == nil {
		t.Fatal("the fsync whose answer was lost succeeded")
	}
	f.WriteString(", then more")
	if err := f.Close(); err != nil {
		t.Fatalf("the second close: %v", err)
	}
	if got := readObject(t, mem, "doc.txt"); got != "first, then more" {
		t.Errorf("S3 holds %q", got)
	}
	if c := conflictedCopies(t, mem, "doc"); len(c) != 0 {
		t.Errorf("conflicted copies of this mount's own write: %v", c)
	}
}

// TestUnansweredUploadThenChmod: an upload lands without its answer, then
// the waiting file's mode changes, and the next upload finds the first
// one there. Same content is not enough to call it done: S3 must end with
// the new mode, which a fresh mount reads. (Under write-back, so that no
// upload starts at the chmod, whenever the close's release comes.)
func TestUnansweredUploadThenChmod(t *testing.T) {
	mem := s3backend.NewMemory()
	opts := writeBackOptions(t)
	opts.Backend = &lostAnswer{Memory: mem, lost: map[string]bool{}}
	dir, fsys := testMountWith(t, mem, opts)
	p := filepath.Join(dir, "run.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fsys.FlushAll(t.Context()); err == nil {
		t.Fatal("the upload whose answer was lost succeeded")
	}
	// A crash now leaves recovery the version that may have landed.
	entries, err := opts.Journal.Entries()
	if err != nil || len(entries) != 1 || len(entries[0].Maybe) != 1 {
		t.Fatalf("journal holds %+v, %v; want the entry with the unanswered attempt's ETag", entries, err)
	}
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fsys.FlushAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	info, err := mem.Head(t.Context(), "run.sh")
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeMeta(info).Mode & 0o777; got != 0o755 {
		t.Errorf("S3 holds mode %o, want 755", got)
	}
	if c := conflictedCopies(t, mem, "run"); len(c) != 0 {
		t.Errorf("conflicted copies: %v", c)
	}
}
