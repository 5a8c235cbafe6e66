package integration

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// conflictKeys returns the keys under the client folder that are
// conflicted copies of stem.
func conflictKeys(t *testing.T, stem string) []string {
	t.Helper()
	var out []string
	for _, k := range listKeys(t, "") {
		if strings.HasPrefix(k, stem+" (conflicted copy ") {
			out = append(out, k)
		}
	}
	return out
}

// lists reports whether the mount's folder listing holds every name.
func lists(m *mount, names ...string) bool {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return false
	}
	var have []string
	for _, e := range entries {
		have = append(have, e.Name())
	}
	for _, n := range names {
		if !slices.Contains(have, n) {
			return false
		}
	}
	return true
}

// TestTwoWriters: two mounts of one folder, events in a set order. No
// edit is lost: an overwrite from the other side sends this side's
// changes beside it, a removal leaves a version written since, and two
// creations of one name keep both.
func TestTwoWriters(t *testing.T) {
	need(t)
	freshClient(t)
	a, b := startMount(t, ""), startMount(t, "")

	// A opens f.txt read-write; B overwrites it; A writes and closes.
	if err := os.WriteFile(a.path("f.txt"), []byte("version 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(a.path("f.txt"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.path("f.txt"), []byte("B's edit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("A's edit, all of it\n"), 0); err != nil {
		t.Fatalf("A's write: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("A's close: %v, want success: the data is kept", err)
	}
	if got := getObject(t, "f.txt"); got != "B's edit\n" {
		t.Errorf("S3 holds %q at f.txt, want B's bytes", got)
	}
	copies := conflictKeys(t, "f")
	if len(copies) != 1 {
		t.Fatalf("conflicted copies of f.txt: %v, want one", copies)
	}
	if got := getObject(t, copies[0]); got != "A's edit, all of it\n" {
		t.Errorf("%s holds %q, want A's bytes", copies[0], got)
	}
	for _, m := range []*mount{a, b} {
		if !waitFor(t, 10*time.Second, func() bool { return lists(m, "f.txt", copies[0]) }) {
			t.Errorf("%s does not list both f.txt and %s", m.dir, copies[0])
		}
	}
	if got, err := os.ReadFile(a.path("f.txt")); err != nil || string(got) != "B's edit\n" {
		t.Errorf("A reads f.txt as %q, %v; want B's version", got, err)
	}

	// A stats g.txt; B overwrites it; A removes it at once.
	if err := os.WriteFile(a.path("g.txt"), []byte("g1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// B knows g.txt (its folder listing, a second old, may not yet).
	if !waitFor(t, 10*time.Second, func() bool { _, err := os.Stat(b.path("g.txt")); return err == nil }) {
		t.Fatal("B never sees g.txt")
	}
	if _, err := os.Stat(a.path("g.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.path("g.txt"), []byte("B's g\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(a.path("g.txt")); err != nil {
		t.Fatalf("A's rm: %v", err)
	}
	run(t, "sync")
	// The removal goes in A's next batch of removals, within seconds.
	if !waitFor(t, 20*time.Second, func() bool { return strings.Contains(a.stderr.String(), "removal skipped") }) {
		t.Errorf("A's log does not say the removal was skipped:\n%s", a.stderr.String())
	}
	if got := getObject(t, "g.txt"); got != "B's g\n" {
		t.Errorf("after A's removal was sent S3 holds %q at g.txt, want B's version kept", got)
	}

	// Both create new.txt: A first, holding it open; B's lands first.
	nf, err := os.Create(a.path("new.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.path("new.txt"), []byte("B's new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nf.WriteString("A's new\n")
	if err := nf.Close(); err != nil {
		t.Fatalf("A's close of new.txt: %v", err)
	}
	if got := getObject(t, "new.txt"); got != "B's new\n" {
		t.Errorf("new.txt holds %q, want B's (first to arrive)", got)
	}
	if c := conflictKeys(t, "new"); len(c) != 1 || getObject(t, c[0]) != "A's new\n" {
		t.Errorf("conflicted copies of new.txt: %v, want one with A's bytes", c)
	}
	out, err := s3driveCmd("status", a.dir, "--json")
	if err != nil || !strings.Contains(out, `"conflicts": 2`) {
		t.Errorf("A's status does not count 2 conflicts: %v\n%s", err, out)
	}
}
