package integration

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTarRoundTrip extracts an archive into the mount and checks the result
// with tar's own compare mode (contents, sizes, modes, modification times,
// owners, symlink targets), on the same mount and from another client after
// S3 is all that is left; then an archive made from the mount unpacks to
// the same tree. tar writes through write-only descriptors in 10 KiB
// records and sets every time after closing the file.
func TestTarRoundTrip(t *testing.T) {
	need(t)
	freshClient(t)
	src := t.TempDir()
	when := time.Date(2024, 3, 9, 8, 30, 0, 0, time.UTC)
	write := func(name string, data []byte, mode os.FileMode) {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	large := make([]byte, 20<<20+4321) // more than one 16 MiB part: streamed
	rand.Read(large)
	write("empty", nil, 0o644)
	write("notes/readme.txt", []byte("tar round trip\n"), 0o640)
	write("bin/run.sh", []byte("#!/bin/sh\necho ok\n"), 0o755)
	write("media/deep/video.bin", large, 0o600)
	if err := os.Symlink("../notes/readme.txt", filepath.Join(src, "bin", "readme")); err != nil {
		t.Fatal(err)
	}
	// Times last, deepest first, as an archive of an old tree has them.
	for _, p := range []string{"media/deep/video.bin", "media/deep", "media", "bin/run.sh", "bin",
		"notes/readme.txt", "notes", "empty"} {
		if err := os.Chtimes(filepath.Join(src, p), when, when); err != nil {
			t.Fatal(err)
		}
		when = when.Add(time.Hour)
	}
	archive := filepath.Join(t.TempDir(), "tree.tar")
	run(t, "tar", "-cf", archive, "-C", src, ".")
	files, dirs := countTree(t, src) // dirs counts src itself: the archive's "."
	const links = 1

	m := startMount(t, "")
	dst := m.path("restore")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	cost := m.requests(func() {
		run(t, "tar", "-xf", archive, "-C", dst)
		// What still waits: the times tar set after each close (stored by
		// fsync of the file), folder markers (by fsync of a folder).
		run(t, "sh", "-c", `find "$1" -type f -exec sync {} + && sync "$1"`, "sh", dst)
	})
	t.Logf("tar -x of %d files, %d folders, %d symlink: %v", files, dirs, links, cost)
	// Each file is uploaded once (the large one as one streamed upload)
	// and each folder's marker written once. A symlink pointing up out of
	// its folder costs two uploads and a delete: GNU tar extracts an empty
	// placeholder file first and replaces it with the link at the end.
	// The times and modes tar sets after close cost at most one copy per
	// file.
	if uploads := cost["PutObject"] + cost["CreateMultipartUpload"]; uploads > int64(files+dirs+2*links) {
		t.Errorf("tar -x cost %v: want ≤ one upload per file and folder, two per symlink (%d)", cost, files+dirs+2*links)
	}
	if cost["CopyObject"] > int64(files) || cost["DeleteObject"]+cost["DeleteObjects"] > links {
		t.Errorf("tar -x cost %v: want ≤ one copy per file (%d), ≤ one delete per symlink", cost, files)
	}
	run(t, "tar", "-df", archive, "-C", dst)

	// Another client, which knows only what S3 holds.
	m.unmount()
	other := startMount(t, "")
	run(t, "tar", "-df", archive, "-C", other.path("restore"))
	back := filepath.Join(t.TempDir(), "back.tar")
	run(t, "tar", "-cf", back, "-C", other.path("restore"), ".")
	unpacked := t.TempDir()
	run(t, "tar", "-xf", back, "-C", unpacked)
	run(t, "diff", "-r", "--no-dereference", src, unpacked)
	run(t, "tar", "-df", archive, "-C", unpacked)
}
