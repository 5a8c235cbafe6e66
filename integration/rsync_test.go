package integration

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRsyncRerunTransfersNothing: after rsync -a into the mount, running it
// again — also after a remount — transfers nothing and costs one listing
// per folder, no HEAD, no upload.
func TestRsyncRerunTransfersNothing(t *testing.T) {
	need(t)
	freshClient(t)
	src, files, dirs := goCryptoTree(t)
	cacheDir := t.TempDir()
	// The counts below are per walk. With the default 1 s TTL a listing
	// fetched ahead of a slow walker can age out before it gets there and
	// be listed again (1 folder in 110 under load): a count that would
	// depend on the machine's speed, not on the drive.
	ttl := []string{"--metadata-ttl", "1m"}
	m := startMount(t, cacheDir, ttl...)
	cost := m.requests(func() {
		run(t, "rsync", "-a", src+"/", m.path("crypto")+"/")
		run(t, "sync", m.path("crypto")) // what still waits: folder markers, batched deletes
	})
	t.Logf("initial rsync of %d files, %d folders: %v", files, dirs, cost)
	// Per file: the temp file's upload at close, then one copy to the final
	// name carrying the chmod and utimes made after close, and its delete
	// (batched). Per folder: one marker, written once mkdir, chmod and
	// utimes are all done.
	if cost["CopyObject"] > int64(files) || cost["PutObject"] > int64(files+dirs) {
		t.Errorf("initial rsync cost %v: want ≤ one upload and one copy per file, one marker per folder", cost)
	}
	run(t, "diff", "-r", src, m.path("crypto"))
	out := run(t, "stat", "-c", "%a %Y", m.path("crypto/sha256/sha256.go"))
	want := run(t, "stat", "-c", "%a %Y", filepath.Join(src, "sha256/sha256.go"))
	if out != want {
		t.Errorf("mode and mtime on the mount %q, source %q", out, want)
	}
	// Again: on the same mount, after a remount (the persistent metadata
	// store), and from another client that never saw these objects.
	for _, again := range []string{"same mount", "remount", "another client"} {
		headsAllowed := int64(0)
		switch again {
		case "remount":
			m.unmount()
			m = startMount(t, cacheDir, ttl...)
		case "another client":
			m = startMount(t, t.TempDir(), ttl...)
			// Its first sight of each file's and folder's mtime.
			headsAllowed = int64(files + dirs)
		}
		var items string
		cost := m.requests(func() { items = run(t, "rsync", "-ai", src+"/", m.path("crypto")+"/") })
		t.Logf("rsync re-run (%s): %v", again, cost)
		if strings.TrimSpace(items) != "" {
			t.Errorf("rsync re-run (%s) transferred:\n%s", again, items)
		}
		if cost["ListObjectsV2"] > int64(dirs+1) || cost["HeadObject"] > headsAllowed ||
			total(cost) != cost["ListObjectsV2"]+cost["HeadObject"] {
			t.Errorf("rsync re-run (%s) cost %v: want ≤ one LIST per folder (%d), ≤ %d HEAD, nothing else",
				again, cost, dirs+1, headsAllowed)
		}
	}

	// Symlinks, which rsync -a copies with their times.
	links := t.TempDir()
	os.WriteFile(filepath.Join(links, "target.txt"), []byte("t"), 0o644)
	os.Symlink("target.txt", filepath.Join(links, "link"))
	os.Symlink("../elsewhere/none", filepath.Join(links, "dangling"))
	run(t, "rsync", "-a", links+"/", m.path("links")+"/")
	if got, err := os.Readlink(m.path("links/dangling")); err != nil || got != "../elsewhere/none" {
		t.Errorf("readlink: %q, %v", got, err)
	}
	if h := head(t, "links/link"); h.Metadata["mode"] != strconv.Itoa(0o120777) {
		t.Errorf("symlink stored with metadata %v, want s3fs's mode 41471", h.Metadata)
	}
	if items := run(t, "rsync", "-ai", links+"/", m.path("links")+"/"); strings.TrimSpace(items) != "" {
		t.Errorf("rsync re-run with symlinks transferred:\n%s", items)
	}
}

// TestRsyncOptions: the rsync options people use on a client's folder, each
// checked with diff -r against the source and by what it cost in S3.
func TestRsyncOptions(t *testing.T) {
	need(t)
	freshClient(t)
	src := t.TempDir()
	write := func(name string, data []byte, mtime time.Time) {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	big := make([]byte, 3<<20)
	rng := rand.NewChaCha8([32]byte{7})
	rng.Read(big)
	write("big.bin", big, day)
	write("notes.txt", []byte("first draft\n"), day)
	write("sub/keep.txt", []byte("keep"), day)
	write("sub/gone.txt", []byte("gone"), day)

	m := startMount(t, t.TempDir())
	dst := m.path("client")
	rsync := func(args ...string) map[string]int64 {
		t.Helper()
		cost := m.requests(func() {
			run(t, "rsync", append(args, src+"/", dst+"/")...)
			run(t, "sync", dst) // sends the batched deletes
		})
		run(t, "diff", "-r", src, dst)
		return cost
	}
	rsync("-a")

	// --inplace writes into the file itself: no temp file, no rename.
	copy(big[1<<20:], "changed in place")
	write("big.bin", big, day.Add(time.Hour))
	cost := rsync("-a", "--inplace")
	if cost["PutObject"] != 1 || cost["DeleteObject"] != 0 || cost["CopyObject"] > 1 {
		t.Errorf("--inplace cost %v: want one upload, no delete, at most the deferred attribute copy", cost)
	}
	if out, want := run(t, "stat", "-c", "%Y %s", filepath.Join(dst, "big.bin")),
		run(t, "stat", "-c", "%Y %s", filepath.Join(src, "big.bin")); out != want {
		t.Errorf("--inplace: mount says %q, source %q", out, want)
	}

	// --delete removes what the source no longer has.
	os.Remove(filepath.Join(src, "sub/gone.txt"))
	cost = rsync("-a", "--delete")
	// The removal changed sub/'s mtime in the source too: rsync may set it
	// on the mount (its marker, one PUT).
	if cost["DeleteObject"] != 1 || cost["CopyObject"] != 0 || cost["PutObject"] > 1 {
		t.Errorf("--delete cost %v: want one delete (and at most the folder's times)", cost)
	}
	if keys := listKeys(t, "client/sub/"); !slices.Equal(keys, []string{"client/sub/", "client/sub/keep.txt"}) &&
		!slices.Equal(keys, []string{"client/sub/keep.txt"}) {
		t.Errorf("after --delete S3 holds %v", keys)
	}

	// --whole-file: a temp file, uploaded once, then one copy to its name.
	write("notes.txt", []byte("second draft, longer\n"), day.Add(2*time.Hour))
	cost = rsync("-a", "--whole-file")
	if cost["PutObject"] != 1 || cost["CopyObject"] != 1 || cost["DeleteObject"] != 1 {
		t.Errorf("--whole-file cost %v: want one upload, one copy, one delete", cost)
	}

	// --checksum notices a change that keeps size and mtime.
	write("notes.txt", []byte("SECOND DRAFT, LONGER\n"), day.Add(2*time.Hour))
	rsync("-a", "--checksum")
	if got := getObject(t, "client/notes.txt"); got != "SECOND DRAFT, LONGER\n" {
		t.Errorf("after --checksum S3 holds %q", got)
	}

	// --partial: an interrupted transfer keeps what arrived under the
	// final name, and the next run completes it.
	huge := make([]byte, 24<<20)
	rng.Read(huge)
	write("huge.bin", huge, day)
	cmd := exec.Command("rsync", "-a", "--partial", "--bwlimit=4m", src+"/", dst+"/")
	// Its own process group, so that SIGINT reaches the receiver too, as a
	// Ctrl-C at a terminal would.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	partialStarted := waitFor(t, 30*time.Second, func() bool {
		temps, _ := filepath.Glob(filepath.Join(dst, ".huge.bin.*"))
		for _, p := range temps {
			if st, err := os.Stat(p); err == nil && st.Size() > 1<<20 {
				return true
			}
		}
		return false
	})
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	cmd.Wait()
	if !partialStarted {
		t.Fatal("rsync never started writing huge.bin")
	}
	// The receiver, a child, may still be renaming the partial file.
	waitFor(t, 30*time.Second, func() bool { return exec.Command("pgrep", "-g", strconv.Itoa(cmd.Process.Pid)).Run() != nil })
	st, err := os.Stat(filepath.Join(dst, "huge.bin"))
	if err != nil || st.Size() == 0 || st.Size() >= int64(len(huge)) {
		t.Fatalf("after the interrupt huge.bin is %v, %v: want the part that arrived", st, err)
	}
	if h := head(t, "client/huge.bin"); h.ContentLength == nil || *h.ContentLength != st.Size() {
		t.Errorf("the partial file in S3: %v bytes, on the mount %d", h.ContentLength, st.Size())
	}
	rsync("-a", "--partial")
	if temps, _ := filepath.Glob(filepath.Join(dst, ".huge.bin.*")); len(temps) != 0 {
		t.Errorf("temp files left: %v", temps)
	}
	if h := head(t, "client/huge.bin"); h.Metadata["mtime"] != strconv.FormatInt(day.Unix(), 10) &&
		!strings.HasPrefix(h.Metadata["mtime"], strconv.FormatInt(day.Unix(), 10)+".") {
		t.Errorf("huge.bin mtime metadata %q, want %d", h.Metadata["mtime"], day.Unix())
	}

	// Attributes deferred after close are in S3 once the drive unmounts.
	m.unmount()
	if h := head(t, "client/big.bin"); !strings.HasPrefix(h.Metadata["mtime"], strconv.FormatInt(day.Add(time.Hour).Unix(), 10)) {
		t.Errorf("big.bin mtime metadata after unmount %q", h.Metadata["mtime"])
	}
}

// waitFor polls cond (an outside program's progress, which nothing
// signals) until it holds or timeout passes, and reports whether it held.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) bool {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
