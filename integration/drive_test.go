package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3drive/s3drive/integration/s3server"
	"golang.org/x/sys/unix"
)

// goCryptoTree is the real tree the copy tests use: Go's own src/crypto
// (about 1,200 files in 110 folders), with its file and folder counts.
func goCryptoTree(t *testing.T) (src string, files, dirs int) {
	t.Helper()
	src = filepath.Join(runtime.GOROOT(), "src", "crypto")
	files, dirs = countTree(t, src)
	return src, files, dirs
}

// countTree returns the number of regular files and directories under root
// (root included among the directories).
func countTree(t *testing.T, root string) (files, dirs int) {
	t.Helper()
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			dirs++
		} else if info.Mode().IsRegular() {
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, dirs
}

// TestCopyTreeThenListAfterRemount copies a real source tree in with cp -r,
// compares it with diff -r, checks the keys through the SDK, then remounts
// and lists it with ls -lR: one LIST per folder and no HEAD, because the
// mount recorded what it wrote in its persistent metadata store.
func TestCopyTreeThenListAfterRemount(t *testing.T) {
	need(t)
	freshClient(t)
	src, files, dirs := goCryptoTree(t)
	cacheDir := t.TempDir()

	m := startMount(t, cacheDir)
	cost := m.requests(func() {
		run(t, "cp", "-r", src, m.path("crypto"))
		run(t, "sync", m.path("crypto")) // folder markers wait MetaDelay, or a sync
	})
	run(t, "diff", "-r", src, m.path("crypto"))
	if got := strings.Count(run(t, "find", m.path("crypto"), "-type", "f"), "\n"); got != files {
		t.Errorf("find lists %d files, want %d", got, files)
	}
	if got := cost["PutObject"]; got != int64(files+dirs) {
		t.Errorf("cp -r of %d files and %d folders sent %d PUTs, want one per file and folder marker", files, dirs, got)
	}
	if cost["HeadObject"] > int64(files) {
		t.Errorf("cp -r sent %d HEADs for %d files", cost["HeadObject"], files)
	}
	keys := listKeys(t, "crypto/")
	markers := 0
	for _, k := range keys {
		if strings.HasSuffix(k, "/") {
			markers++
		}
	}
	if len(keys)-markers != files || markers != dirs {
		t.Fatalf("S3 holds %d objects and %d markers under crypto/, want %d and %d", len(keys)-markers, markers, files, dirs)
	}
	h := head(t, "crypto/sha256/sha256.go")
	if h.Metadata["mode"] != strconv.Itoa(0o100644) || h.Metadata["mtime"] == "" {
		t.Errorf("metadata of an uploaded file = %v, want mode 33188 and an mtime", h.Metadata)
	}
	if aws.ToString(h.ContentType) == "" {
		t.Errorf("no Content-Type on upload")
	}
	m.unmount()

	// A TTL that outlasts two walks, however slow (the race detector's).
	m = startMount(t, cacheDir, "--metadata-ttl", "1m")
	var listing string
	cost = m.requests(func() { listing = run(t, "ls", "-lR", m.dir) })
	if cost["HeadObject"] != 0 {
		t.Errorf("ls -lR after remount sent %d HEADs, want 0 (metadata store)", cost["HeadObject"])
	}
	if cost["ListObjectsV2"] != int64(dirs+1) {
		t.Errorf("ls -lR of %d folders (and the root) sent %d LISTs, want one per folder", dirs, cost["ListObjectsV2"])
	}
	if n := strings.Count(listing, "\n-"); n != files {
		t.Errorf("ls -lR shows %d files, want %d", n, files)
	}
	cost = m.requests(func() { run(t, "ls", "-lR", m.dir) })
	if total(cost) != 0 {
		t.Errorf("repeating ls -lR within the TTL cost %v, want nothing", cost)
	}

	// The whole tree, folder markers included, moves and then goes away.
	cost = m.requests(func() { run(t, "mv", m.path("crypto"), m.path("moved")) })
	// Markers are rewritten (PUT), not copied; the mount wrote them, so no HEAD.
	if cost["CopyObject"] != int64(files) || cost["PutObject"] != int64(dirs) || cost["HeadObject"] != 0 {
		t.Errorf("mv of the tree cost %v: want %d CopyObject and %d PutObject", cost, files, dirs)
	}
	run(t, "diff", "-r", src, m.path("moved"))
	if left := listKeys(t, "crypto/"); len(left) != 0 {
		t.Errorf("%d keys left under crypto/ after mv, e.g. %v", len(left), left[0])
	}
	if got := len(listKeys(t, "moved/")); got != files+dirs {
		t.Errorf("%d keys under moved/, want %d", got, files+dirs)
	}
	cost = m.requests(func() {
		run(t, "rm", "-rf", m.path("moved"))
		run(t, "sync", m.dir) // sends the last batch of deletes
	})
	// Files go in batches (rmdir sends its folder's), markers one by one.
	if cost["DeleteObject"]+cost["DeleteObjects"] > int64(2*(dirs+1)) {
		t.Errorf("rm -rf of %d files in %d folders cost %v: want ≤ 2 delete requests per folder", files, dirs, cost)
	}
	if left := listKeys(t, ""); len(left) != 0 {
		t.Errorf("%d keys left after rm -rf, e.g. %v", len(left), left[0])
	}
}

func total(c map[string]int64) (n int64) {
	for _, v := range c {
		n += v
	}
	return n
}

// TestForeignObjectsListing: objects written by another client appear, cost
// at most one HEAD each on first sight, then none (also after a remount).
func TestForeignObjectsListing(t *testing.T) {
	need(t)
	freshClient(t)
	const n = 60
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			putObject(t, fmt.Sprintf("inbox/doc-%02d.txt", i), strings.Repeat("x", i),
				map[string]string{"mtime": "1600000000.5", "mode": strconv.Itoa(0o100600)})
		}()
	}
	wg.Wait()
	cacheDir := t.TempDir()
	m := startMount(t, cacheDir, "--metadata-ttl", "1m")
	// Names only: the root's listing, no HEAD, not even of inbox's marker.
	if cost := m.requests(func() { run(t, "ls", m.dir) }); cost["ListObjectsV2"] != 1 || total(cost) != 1 {
		t.Errorf("ls of the root cost %v, want its LIST alone", cost)
	}
	var out string
	cost := m.requests(func() { out = run(t, "ls", "-l", "--time-style=+%s", m.path("inbox")) })
	// inbox has no marker: its listing, fetched at its lookup, shows that
	// (no HEAD for the folder) and serves the readdir.
	if cost["ListObjectsV2"] != 1 || cost["HeadObject"] != n || total(cost) != n+1 {
		t.Errorf("first ls -l of %d foreign objects cost %v: want 1 LIST and one HEAD per object", n, cost)
	}
	if c := strings.Count(out, "-rw------- 1 root root"); c != n {
		t.Errorf("ls -l shows %d files with the metadata mode, want %d:\n%s", c, n, out)
	}
	if !strings.Contains(out, " 1600000000 ") {
		t.Errorf("ls -l does not show the metadata mtime:\n%s", out)
	}
	cost = m.requests(func() { run(t, "ls", "-l", m.path("inbox")); run(t, "stat", m.path("inbox/doc-07.txt")) })
	if total(cost) != 0 {
		t.Errorf("repeated ls -l and stat within the TTL cost %v, want nothing", cost)
	}
	// A probe for a missing name is answered from the listing, repeatedly.
	cost = m.requests(func() {
		for range 3 {
			if _, err := os.Stat(m.path("inbox/.hidden")); !os.IsNotExist(err) {
				t.Errorf("stat of a missing name: %v", err)
			}
		}
	})
	if total(cost) != 0 {
		t.Errorf("negative lookups in a listed folder cost %v", cost)
	}

	// Written by the SDK while mounted: visible once the TTL has passed.
	putObject(t, "inbox/late.txt", "late", nil)
	m.unmount()
	m = startMount(t, cacheDir, "--metadata-ttl", "1m") // the root's listing still answers at ls -l
	run(t, "ls", m.dir)
	cost = m.requests(func() { out = run(t, "ls", "-l", m.path("inbox")) })
	if cost["HeadObject"] != 1 || cost["ListObjectsV2"] != 1 {
		t.Errorf("after remount, ls -l cost %v: want exactly 1 HEAD (the one object never seen)", cost)
	}
	if !strings.Contains(out, "late.txt") {
		t.Errorf("object written by the SDK is not listed:\n%s", out)
	}
	if b, err := os.ReadFile(m.path("inbox/late.txt")); err != nil || string(b) != "late" {
		t.Errorf("reading the SDK's object: %q, %v", b, err)
	}
}

// TestForeignObjectAppearsWithinTTL: an object PUT by the SDK while the
// folder is cached shows up once the metadata TTL has passed.
func TestForeignObjectAppearsWithinTTL(t *testing.T) {
	need(t)
	freshClient(t)
	m := startMount(t, "", "--metadata-ttl", "500ms", "--negative-ttl", "500ms")
	run(t, "ls", m.dir)
	putObject(t, "from-sdk.txt", "hello from the SDK", nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(m.path("from-sdk.txt"))
		if err == nil {
			if string(b) != "hello from the SDK" {
				t.Fatalf("content %q", b)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("object written by the SDK never appeared: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // waiting out the TTL under test
	}
}

// TestMoveFolderOfThousandFiles renames a folder of 1,100 objects with mv.
func TestMoveFolderOfThousandFiles(t *testing.T) {
	need(t)
	freshClient(t)
	const n = 1100
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			putObject(t, fmt.Sprintf("big/sub%d/f%04d", i%3, i), strconv.Itoa(i), nil)
		}()
	}
	wg.Wait()
	m := startMount(t, "")
	cost := m.requests(func() { run(t, "mv", m.path("big"), m.path("moved")) })
	if got := len(listKeys(t, "big/")); got != 0 {
		t.Errorf("%d keys left under big/ after mv", got)
	}
	moved := listKeys(t, "moved/")
	if len(moved) != n {
		t.Fatalf("%d keys under moved/, want %d", len(moved), n)
	}
	if got := getObject(t, "moved/sub1/f0007"); got != "7" {
		t.Errorf("moved/sub1/f0007 = %q", got)
	}
	if cost["CopyObject"] != n || cost["DeleteObjects"] != 2 {
		t.Errorf("mv of %d objects cost %v: want %d CopyObject and 2 DeleteObjects batches", n, cost, n)
	}
	files, _ := countTree(t, m.path("moved"))
	if files != n {
		t.Errorf("mount shows %d files under moved/, want %d", files, n)
	}
}

// TestRemoveTree removes a tree with rm -rf; nothing is left in S3.
func TestRemoveTree(t *testing.T) {
	need(t)
	freshClient(t)
	m := startMount(t, "")
	run(t, "mkdir", "-p", m.path("tree/a/b/c"))
	for _, p := range []string{"tree/x", "tree/a/y", "tree/a/b/z", "tree/a/b/c/w"} {
		if err := os.WriteFile(m.path(p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(m.path("tree/a/b")); err == nil || !strings.Contains(err.Error(), "directory not empty") {
		t.Errorf("rmdir of a non-empty folder: %v, want ENOTEMPTY", err)
	}
	run(t, "rm", "-rf", m.path("tree"))
	run(t, "sync", m.dir) // sends the batched deletes
	if keys := listKeys(t, "tree"); len(keys) != 0 {
		t.Errorf("keys left after rm -rf: %v", keys)
	}
	if _, err := os.Stat(m.path("tree")); !os.IsNotExist(err) {
		t.Errorf("tree still visible: %v", err)
	}
}

// TestLargeFileMultipart writes 100 MiB with dd (multipart upload) and
// reads it back, also after a remount, with a matching checksum.
func TestLargeFileMultipart(t *testing.T) {
	need(t)
	freshClient(t)
	src := filepath.Join(t.TempDir(), "src")
	run(t, "dd", "if=/dev/urandom", "of="+src, "bs=1M", "count=100", "status=none")
	want := sha256File(t, src)
	m := startMount(t, "")
	cost := m.requests(func() { run(t, "dd", "if="+src, "of="+m.path("big.bin"), "bs=1M", "status=none") })
	if cost["CreateMultipartUpload"] != 1 || cost["UploadPart"] != 7 || cost["CompleteMultipartUpload"] != 1 {
		t.Errorf("100 MiB upload cost %v: want 1 create, 7 parts of 16 MiB, 1 complete", cost)
	}
	h := head(t, "big.bin")
	if aws.ToInt64(h.ContentLength) != 100<<20 || !strings.HasSuffix(strings.Trim(aws.ToString(h.ETag), `"`), "-7") {
		t.Errorf("S3 object: size %d, ETag %s", aws.ToInt64(h.ContentLength), aws.ToString(h.ETag))
	}
	if got := sha256File(t, m.path("big.bin")); got != want {
		t.Errorf("read back through the mount: checksum differs")
	}

	// Parts go up while the copy runs, not after it: with the file still
	// open, S3 already has most of it; close sends the tail.
	whole, _ := os.ReadFile(src)
	w, err := os.Create(m.path("streamed.bin"))
	if err != nil {
		t.Fatal(err)
	}
	before := m.counters()["UploadPart"]
	if _, err := w.Write(whole); err != nil {
		t.Fatal(err)
	}
	if !waitFor(t, 60*time.Second, func() bool { return m.counters()["UploadPart"]-before >= 4 }) {
		t.Errorf("no parts uploaded while the file was open: %v", m.counters())
	}
	closing := m.requests(func() {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
	if closing["UploadPart"] > 3 || closing["CompleteMultipartUpload"] != 1 || closing["PutObject"] != 0 {
		t.Errorf("close cost %v: want the tail parts and the completion only", closing)
	}
	if got := sha256File(t, m.path("streamed.bin")); got != want || aws.ToInt64(head(t, "streamed.bin").ContentLength) != 100<<20 {
		t.Errorf("streamed file: checksum or size differs")
	}
	m.unmount()
	m = startMount(t, "")
	back := filepath.Join(t.TempDir(), "back")
	run(t, "dd", "if="+m.path("big.bin"), "of="+back, "bs=4M", "status=none")
	if got := sha256File(t, back); got != want {
		t.Errorf("cold read after remount: checksum differs")
	}
	// A ranged read from the middle.
	f, err := os.Open(m.path("big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	part := make([]byte, 4096)
	if _, err := f.ReadAt(part, 50<<20+123); err != nil {
		t.Fatal(err)
	}
	if string(part) != string(whole[50<<20+123:50<<20+123+4096]) {
		t.Errorf("ranged read returned the wrong bytes")
	}
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestOverwriteAppendTruncate: O_TRUNC overwrite, append, random write,
// truncate shrink and grow, each checked through the SDK.
func TestOverwriteAppendTruncate(t *testing.T) {
	need(t)
	freshClient(t)
	m := startMount(t, "")
	p := m.path("notes.txt")
	write := func(flag int, s string) {
		f, err := os.OpenFile(p, flag, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
	write(os.O_CREATE|os.O_WRONLY|os.O_TRUNC, "first version\n")
	write(os.O_WRONLY|os.O_TRUNC, "second\n")
	if got := getObject(t, "notes.txt"); got != "second\n" {
		t.Fatalf("after overwrite S3 has %q", got)
	}
	write(os.O_WRONLY|os.O_APPEND, "appended\n")
	if got := getObject(t, "notes.txt"); got != "second\nappended\n" {
		t.Fatalf("after append S3 has %q", got)
	}
	run(t, "sh", "-c", "printf XY | dd of="+p+" bs=1 seek=2 conv=notrunc status=none")
	if got := getObject(t, "notes.txt"); got != "seXYnd\nappended\n" {
		t.Fatalf("after random write S3 has %q", got)
	}
	run(t, "truncate", "-s", "4", p)
	if got := getObject(t, "notes.txt"); got != "seXY" {
		t.Fatalf("after shrink S3 has %q", got)
	}
	run(t, "truncate", "-s", "6", p)
	if got := getObject(t, "notes.txt"); got != "seXY\x00\x00" {
		t.Fatalf("after grow S3 has %q", got)
	}
	if b, _ := os.ReadFile(p); string(b) != "seXY\x00\x00" {
		t.Fatalf("mount reads %q", b)
	}
	// mv over an existing file replaces it.
	write(os.O_CREATE|os.O_WRONLY, "other")
	write(os.O_CREATE|os.O_WRONLY, "x")
	run(t, "sh", "-c", "echo replacement > "+m.path("new.txt"))
	run(t, "mv", m.path("new.txt"), p)
	// The old name's delete rides in a batch; fsync of the folder (sync
	// DIR) sends it, as it makes a rename durable on a local disk.
	run(t, "sync", m.dir)
	if got := getObject(t, "notes.txt"); got != "replacement\n" {
		t.Fatalf("after mv over S3 has %q", got)
	}
	if keys := listKeys(t, ""); len(keys) != 1 {
		t.Fatalf("keys after mv over: %v", keys)
	}
	if err := os.Link(p, m.path("hard")); err == nil || !strings.Contains(err.Error(), "operation not permitted") {
		t.Errorf("hard link: %v, want EPERM", err)
	}
	run(t, "df", m.dir)
}

// TestAttributesPersist: chmod and touch -d are stored in object metadata
// with the s3fs/rclone keys and seen again after a remount.
func TestAttributesPersist(t *testing.T) {
	need(t)
	freshClient(t)
	putObject(t, "ledger.csv", "a,b\n", map[string]string{"client": "acme", "retention": "7y"})
	m := startMount(t, "")
	p := m.path("report.pdf")
	if err := os.WriteFile(p, []byte("%PDF"), 0o644); err != nil {
		t.Fatal(err)
	}
	cost := m.requests(func() {
		run(t, "chmod", "640", p)
		run(t, "touch", "-d", "2021-02-03 04:05:06.123456789 UTC", p)
	})
	if len(cost) != 0 {
		t.Errorf("chmod + touch cost %v: want nothing until fsync, a rename or MetaDelay", cost)
	}
	if out := run(t, "stat", "-c", "%a %Y", p); out != "640 1612325106\n" {
		t.Errorf("stat after chmod + touch: %q", out)
	}
	// sync FILE is fsync(2): both changes go up in one self-copy.
	cost = m.requests(func() { run(t, "sync", p) })
	if cost["CopyObject"] != 1 || len(cost) != 1 {
		t.Errorf("fsync after chmod + touch cost %v: want one metadata self-copy", cost)
	}
	h := head(t, "report.pdf")
	if h.Metadata["mode"] != strconv.Itoa(0o100640) || h.Metadata["mtime"] != "1612325106.123456789" {
		t.Errorf("S3 metadata %v, want mode 33184 and mtime 1612325106.123456789", h.Metadata)
	}
	if aws.ToString(h.ContentType) != "application/pdf" {
		t.Errorf("Content-Type %q after metadata rewrite", aws.ToString(h.ContentType))
	}
	// Metadata another tool stored survives attribute changes and overwrites.
	run(t, "chmod", "600", m.path("ledger.csv"))
	run(t, "sh", "-c", "echo c,d >> "+m.path("ledger.csv"))
	if h := head(t, "ledger.csv"); h.Metadata["client"] != "acme" || h.Metadata["retention"] != "7y" || h.Metadata["mode"] != strconv.Itoa(0o100600) {
		t.Errorf("foreign metadata after chmod and append: %v", h.Metadata)
	}
	run(t, "mkdir", m.path("folder"))
	run(t, "chmod", "700", m.path("folder"))
	// fusermount3 -u ends the drive as cleanly as s3drive unmount.
	run(t, "fusermount3", "-u", m.dir)
	m.waitExit("fusermount3 -u")

	// A fresh cache: the attributes must come from S3 itself.
	m = startMount(t, "")
	p = m.path("report.pdf")
	out := run(t, "stat", "-c", "%a %Y.%y", p)
	if !strings.HasPrefix(out, "640 1612325106.") || !strings.Contains(out, "04:05:06.123456789") {
		t.Errorf("after remount stat says %q", out)
	}
	if got := getObject(t, "report.pdf"); got != "%PDF" {
		t.Errorf("content %q", got)
	}
	if h := head(t, "folder/"); h.Metadata["mode"] != strconv.Itoa(0o40700) {
		t.Errorf("folder marker metadata %v", h.Metadata)
	}
}

// TestSymlink stores a symlink the s3fs way and reads it back.
func TestSymlink(t *testing.T) {
	need(t)
	freshClient(t)
	m := startMount(t, "")
	if err := os.Symlink("../target/file.txt", m.path("link")); err != nil {
		t.Fatal(err)
	}
	h := head(t, "link")
	if h.Metadata["mode"] != strconv.Itoa(0o120777) || getObject(t, "link") != "../target/file.txt" {
		t.Errorf("symlink object: metadata %v", h.Metadata)
	}
	m.unmount()
	m = startMount(t, "")
	if got, err := os.Readlink(m.path("link")); err != nil || got != "../target/file.txt" {
		t.Errorf("readlink after remount: %q, %v", got, err)
	}
}

// TestCLIErrors: bad input gets one clear line and a non-zero exit.
func TestCLIErrors(t *testing.T) {
	need(t)
	empty := t.TempDir()
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	dead, _ := s3server.FreePort()
	cases := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"no bucket", []string{"mount", "--endpoint", env.endpoint, "s3://no-such-bucket", empty}, nil, `bucket "no-such-bucket" does not exist`},
		{"wrong credentials", []string{"mount", "--endpoint", env.endpoint, "s3://" + bucket, empty},
			[]string{"AWS_SECRET_ACCESS_KEY=wrong"}, "rejected the credentials"},
		{"no credentials", []string{"mount", "--endpoint", env.endpoint, "s3://" + bucket, empty},
			[]string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="}, "no AWS credentials found"},
		{"unreachable", []string{"mount", "--endpoint", "http://" + dead, "s3://" + bucket, empty}, nil, "cannot reach"},
		{"missing mountpoint", []string{"mount", "--endpoint", env.endpoint, "s3://" + bucket, empty + "/nope"}, nil, "does not exist"},
		{"not empty", []string{"mount", "--endpoint", env.endpoint, "s3://" + bucket, full}, nil, "is not empty"},
		{"bad url", []string{"mount", "bucket", empty}, nil, "not an S3 URL"},
		{"bad mode", []string{"mount", "--file-mode", "999", "s3://b", empty}, nil, "want octal"},
		{"bad flag", []string{"mount", "--no-such-flag", "s3://b", empty}, nil, "unknown flag"},
		{"zero write-back budget", []string{"mount", "--write-back", "--write-back-budget", "0", "s3://b", empty}, nil, "--write-back-budget must be more than 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, env.binary, c.args...)
			cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey,
				"AWS_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true")
			cmd.Env = append(cmd.Env, c.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("exit 0, want failure; output:\n%s", out)
			}
			text := strings.TrimSpace(string(out))
			if !strings.Contains(text, c.want) {
				t.Errorf("output %q does not say %q", text, c.want)
			}
			if strings.Contains(text, "goroutine ") || strings.Count(text, "\n") > 2 {
				t.Errorf("not a short message:\n%s", text)
			}
		})
	}
	// Already mounted.
	freshClient(t)
	m := startMount(t, "")
	out, err := exec.Command(env.binary, "mount", "--endpoint", env.endpoint, "s3://"+bucket, m.dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already a mountpoint") {
		t.Errorf("mounting twice: %v: %s", err, out)
	}
}

// TestUploadFailureKeepsData: with the server gone, close() fails with EIO
// and the staged data stays; once the server is back, SIGTERM uploads it
// before s3drive unmounts and exits.
func TestUploadFailureKeepsData(t *testing.T) {
	need(t)
	root := filepath.Join(t.TempDir(), "s3")
	srv, err := s3server.Start(env.vgw, root)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Stop() }()
	endpoint := srv.Endpoint
	client := s3server.Client(endpoint)
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	saved := env.endpoint
	env.endpoint = endpoint
	m := startMount(t, "")
	env.endpoint = saved

	f, err := os.Create(m.path("precious.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("do not lose me"); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	err = f.Close()
	if err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("close with the server down: %v, want EIO", err)
	}
	staged, _ := filepath.Glob(filepath.Join(m.cacheDir, "*", "staging", "stage-*"))
	if len(staged) != 1 {
		t.Fatalf("staged files after failed upload: %v", staged)
	}
	if b, _ := os.ReadFile(staged[0]); string(b) != "do not lose me" {
		t.Fatalf("staged data %q", b)
	}
	srv, err = s3server.StartAt(env.vgw, root, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	m.terminate()
	out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(clientDir + "/precious.txt")})
	if err != nil {
		t.Fatalf("after unmount the data is not in S3: %v", err)
	}
	b, _ := io.ReadAll(out.Body)
	if string(b) != "do not lose me" {
		t.Errorf("S3 has %q", b)
	}
}

// TestReadOnly: a --read-only mount reads and refuses every change.
func TestReadOnly(t *testing.T) {
	need(t)
	freshClient(t)
	putObject(t, "a.txt", "data", nil)
	m := startMount(t, "", "--read-only")
	if b, err := os.ReadFile(m.path("a.txt")); err != nil || string(b) != "data" {
		t.Fatalf("read: %q, %v", b, err)
	}
	for name, op := range map[string]func() error{
		"create": func() error { return os.WriteFile(m.path("new"), nil, 0o644) },
		"write":  func() error { return os.WriteFile(m.path("a.txt"), []byte("x"), 0o644) },
		"mkdir":  func() error { return os.Mkdir(m.path("d"), 0o755) },
		"remove": func() error { return os.Remove(m.path("a.txt")) },
		"chmod":  func() error { return os.Chmod(m.path("a.txt"), 0o600) },
	} {
		if err := op(); err == nil || !strings.Contains(err.Error(), "read-only file system") {
			t.Errorf("%s on a read-only mount: %v, want EROFS", name, err)
		}
	}
	if got := getObject(t, "a.txt"); got != "data" {
		t.Errorf("object changed to %q", got)
	}
}

// TestDemo runs the README's first quick-start command: s3drive demo mounts
// a working drive over its embedded endpoint, and the data outlives it.
func TestDemo(t *testing.T) {
	need(t)
	data, mnt := t.TempDir(), t.TempDir()
	start := func() (*exec.Cmd, chan error) {
		cmd := exec.Command(env.binary, "demo", mnt, "--data-dir", data, "--cache-dir", t.TempDir())
		cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_DISABLED=true")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		exited := make(chan error, 1)
		go func() {
			b := make([]byte, 4096)
			var seen string
			for {
				n, err := out.Read(b)
				seen += string(b[:n])
				if strings.Contains(seen, "your drive is ready") {
					ready <- true
					io.Copy(io.Discard, out)
					break
				}
				if err != nil {
					ready <- false
					break
				}
			}
			exited <- cmd.Wait()
		}()
		select {
		case ok := <-ready:
			if !ok {
				t.Fatalf("demo exited before it was ready: %v\n%s", <-exited, stderr.String())
			}
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatal("demo not ready within 60s")
		}
		return cmd, exited
	}
	stop := func(cmd *exec.Cmd, exited chan error) {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("demo exited with %v after SIGTERM", err)
			}
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatal("demo did not stop on SIGTERM")
		}
	}
	cmd, exited := start()
	run(t, "mkdir", filepath.Join(mnt, "docs"))
	if err := os.WriteFile(filepath.Join(mnt, "docs", "hello.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A second demo on the same data says so instead of waiting forever.
	out, err := exec.Command(env.binary, "demo", t.TempDir(), "--data-dir", data).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another s3drive demo") {
		t.Errorf("second demo on the same data: %v: %s", err, out)
	}
	stop(cmd, exited)

	cmd, exited = start()
	defer stop(cmd, exited)
	if b, err := os.ReadFile(filepath.Join(mnt, "docs", "hello.txt")); err != nil || string(b) != "hello" {
		t.Errorf("after restarting the demo: %q, %v", b, err)
	}
	// Moves are copies on the endpoint (its copy once crashed it).
	for i := range 20 {
		if err := os.WriteFile(filepath.Join(mnt, fmt.Sprintf("f%d", i)), bytes.Repeat([]byte("x"), 64<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "mv", filepath.Join(mnt, "docs", "hello.txt"), filepath.Join(mnt, "hello moved.txt"))
	if b, err := os.ReadFile(filepath.Join(mnt, "hello moved.txt")); err != nil || string(b) != "hello" {
		t.Errorf("after mv: %q, %v", b, err)
	}
}

// TestXattrs: setfattr/getfattr read and write user metadata.
func TestXattrs(t *testing.T) {
	need(t)
	freshClient(t)
	putObject(t, "contract.pdf", "%PDF", map[string]string{"client": "acme"})
	m := startMount(t, "")
	p := m.path("contract.pdf")
	run(t, "setfattr", "-n", "user.reviewed-by", "-v", "ann", p)
	if h := head(t, "contract.pdf"); h.Metadata["reviewed-by"] != "ann" || h.Metadata["client"] != "acme" {
		t.Errorf("metadata after setfattr: %v", h.Metadata)
	}
	m.unmount()
	m = startMount(t, "")
	out := run(t, "getfattr", "--absolute-names", "-d", m.path("contract.pdf"))
	if !strings.Contains(out, `user.client="acme"`) || !strings.Contains(out, `user.reviewed-by="ann"`) {
		t.Errorf("getfattr -d after remount:\n%s", out)
	}
	etag := strings.Trim(aws.ToString(head(t, "contract.pdf").ETag), `"`)
	if got := run(t, "getfattr", "--absolute-names", "--only-values", "-n", "user.s3.etag", m.path("contract.pdf")); got != etag {
		t.Errorf("user.s3.etag = %q, want %q", got, etag)
	}
	if got := run(t, "getfattr", "--absolute-names", "--only-values", "-n", "user.s3.storage-class", m.path("contract.pdf")); got != "STANDARD" {
		t.Errorf("user.s3.storage-class = %q", got)
	}
}

// TestDataCacheSurvivesRemount: a file read once, or written here, is read
// again from --cache-dir with no GET, also after a remount; --passthrough
// hands those reads to the kernel.
func TestDataCacheSurvivesRemount(t *testing.T) {
	need(t)
	freshClient(t)
	body := strings.Repeat("0123456789abcdef", 40<<16) // 40 MiB
	putObject(t, "scan.tiff", body, nil)
	cacheDir := t.TempDir()
	m := startMount(t, cacheDir, "--passthrough")
	// The kernel's read-ahead for the mount, raised from 128 KiB so that a
	// sequential reader's data comes in 1 MiB requests.
	var st syscall.Stat_t
	if err := syscall.Stat(m.dir, &st); err != nil {
		t.Fatal(err)
	}
	ra, err := os.ReadFile(fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil || strings.TrimSpace(string(ra)) != "16384" {
		t.Errorf("mount's read-ahead: %q (%v), want 16384 KiB", ra, err)
	}
	cold := m.requests(func() {
		if got, err := os.ReadFile(m.path("scan.tiff")); err != nil || string(got) != body {
			t.Fatalf("cold read: %v", err)
		}
	})
	// The first read fetches its MiB alone, then runs of 16 MiB follow.
	// The kernel's read-ahead sends up to 16 MiB of reads at once, served
	// in any order: those that land before the reader counts as
	// sequential each fetch their MiB alone. Fetched a MiB at a time, 40
	// MiB would be 40 GETs; in runs, a handful.
	if n := cold["GetObject"]; n < 3 || n > 8 {
		t.Errorf("cold read of 40 MiB cost %v: want 3 to 8 ranged GETs (runs of 16 MiB, and the MiBs read first)", cold)
	}
	if err := os.WriteFile(m.path("written.bin"), []byte(body[:1<<20]), 0o644); err != nil {
		t.Fatal(err)
	}
	m.unmount()

	m = startMount(t, cacheDir, "--passthrough")
	warm := m.requests(func() {
		if got, err := os.ReadFile(m.path("scan.tiff")); err != nil || string(got) != body {
			t.Fatalf("re-read: %v", err)
		}
		if got, err := os.ReadFile(m.path("written.bin")); err != nil || string(got) != body[:1<<20] {
			t.Fatalf("reading back a written file: %v", err)
		}
	})
	if warm["GetObject"] != 0 {
		t.Errorf("re-reads after a remount cost %v: want no GET", warm)
	}
	r, err := os.Open(m.path("scan.tiff"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.OpenFile(m.path("scan.tiff"), os.O_WRONLY, 0); !errors.Is(err, syscall.ETXTBSY) {
		t.Errorf("opening for writing beside a passthrough reader: %v, want ETXTBSY", err)
	}
	r.Close()
	// Once the reader is closed, writing works at once.
	w, err := os.OpenFile(m.path("scan.tiff"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("writable open after the passthrough reader closed: %v", err)
	}
	w.Close()

	// Another client changes the object: the new ETag misses the cache.
	putObject(t, "scan.tiff", "replaced", nil)
	m.unmount()
	m = startMount(t, cacheDir)
	if got, err := os.ReadFile(m.path("scan.tiff")); err != nil || string(got) != "replaced" {
		t.Errorf("after another client replaced it: %q, %v", got, err)
	}
}
