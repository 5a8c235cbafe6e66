package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// gvfsdTrash is the gvfs daemon behind trash:// (Debian's gvfs package).
const gvfsdTrash = "/usr/libexec/gvfsd-trash"

// gio runs gio, the library Nautilus and other GTK file managers use for
// every file operation, and fails the test if it fails.
func gio(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, "gio", args...)
}

// TestGioFileOperations drives the mount the way a GTK file manager does:
// copy in, out and within, make a folder, move, remove, info, set mtime.
func TestGioFileOperations(t *testing.T) {
	need(t)
	freshClient(t)
	local := t.TempDir()
	for i := range 12 {
		name := filepath.Join(local, "batch", "scan-"+strconv.Itoa(i)+".pdf")
		os.MkdirAll(filepath.Dir(name), 0o755)
		if err := os.WriteFile(name, []byte(strings.Repeat("page ", i*100+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(local, "invoice.txt"), []byte("due: 30 days\n"), 0o644)
	os.WriteFile(filepath.Join(local, "dragged.txt"), []byte("moved in\n"), 0o644)
	m := startMount(t, "")

	gio(t, "copy", filepath.Join(local, "invoice.txt"), m.path(""))
	if got := getObject(t, "invoice.txt"); got != "due: 30 days\n" {
		t.Errorf("gio copy of one file: S3 holds %q", got)
	}
	gio(t, "mkdir", m.path("scans"))
	run(t, "sync", m.path("scans")) // a new folder's marker waits MetaDelay, or a sync
	if h := head(t, "scans/"); h.Metadata["mode"] == "" {
		t.Errorf("gio mkdir: marker metadata %v", h.Metadata)
	}
	sources, _ := filepath.Glob(filepath.Join(local, "batch", "*"))
	gio(t, append(append([]string{"copy"}, sources...), m.path("scans"))...)
	run(t, "diff", "-r", filepath.Join(local, "batch"), m.path("scans"))

	// Within the mount, into it (the source goes away), and out of it.
	gio(t, "move", m.path("invoice.txt"), m.path("scans/invoice.txt"))
	gio(t, "move", filepath.Join(local, "dragged.txt"), m.path("dragged.txt"))
	if _, err := os.Stat(filepath.Join(local, "dragged.txt")); !os.IsNotExist(err) {
		t.Errorf("gio move into the mount left the source: %v", err)
	}
	out := t.TempDir()
	gio(t, "move", m.path("scans/scan-3.pdf"), out)
	gio(t, "copy", m.path("scans/scan-4.pdf"), out)
	for _, n := range []string{"scan-3.pdf", "scan-4.pdf"} {
		run(t, "cmp", filepath.Join(local, "batch", n), filepath.Join(out, n))
	}
	gio(t, "remove", m.path("scans/scan-5.pdf"))
	run(t, "sync", m.dir) // sends the batched deletes
	keys := listKeys(t, "")
	for _, want := range []string{"dragged.txt", "scans/invoice.txt", "scans/scan-4.pdf"} {
		if !slices.Contains(keys, want) {
			t.Errorf("S3 lacks %s: %v", want, keys)
		}
	}
	for _, gone := range []string{"invoice.txt", "scans/scan-3.pdf", "scans/scan-5.pdf"} {
		if slices.Contains(keys, gone) {
			t.Errorf("S3 still holds %s", gone)
		}
	}

	// "New Folder", then named by the user: one marker, under the name.
	cost := m.requests(func() {
		gio(t, "mkdir", m.path("Untitled Folder"))
		gio(t, "rename", m.path("Untitled Folder"), "Invoices")
		run(t, "sync", m.path("Invoices"))
	})
	if cost["PutObject"] != 1 || cost["CopyObject"] != 0 || cost["DeleteObject"]+cost["DeleteObjects"] != 0 {
		t.Errorf("new folder, renamed: %v, want one marker PUT and no copy or delete", cost)
	}
	if keys := listKeys(t, ""); !slices.Contains(keys, "Invoices/") || slices.Contains(keys, "Untitled Folder/") {
		t.Errorf("after naming a new folder S3 holds %v", keys)
	}

	info := gio(t, "info", m.path("scans/invoice.txt"))
	for _, want := range []string{"standard::size: 13", "standard::content-type: text/plain",
		"unix::mode: 33188", "access::can-trash: TRUE", "xattr::s3.etag: "} {
		if !strings.Contains(info, want) {
			t.Errorf("gio info lacks %q:\n%s", want, info)
		}
	}
	gio(t, "set", "-t", "uint64", m.path("scans/invoice.txt"), "time::modified", "1600000000")
	if got := run(t, "stat", "-c", "%Y", m.path("scans/invoice.txt")); got != "1600000000\n" {
		t.Errorf("mtime after gio set: %q", got)
	}
	m.unmount()
	if h := head(t, "scans/invoice.txt"); !strings.HasPrefix(h.Metadata["mtime"], "1600000000") {
		t.Errorf("mtime metadata after gio set and unmount: %v", h.Metadata)
	}
}

// TestFileManagerBrowsingIsFree: what a file manager asks of a folder it
// shows — every attribute of every entry, the .hidden file, the probes for
// other systems' special names, security and ACL xattrs — is answered
// without S3 once the folder has been listed, within the TTL.
func TestFileManagerBrowsingIsFree(t *testing.T) {
	need(t)
	freshClient(t)
	putObject(t, "inbox/from-sdk.txt", "another client", map[string]string{"origin": "portal"})
	m := startMount(t, "", "--metadata-ttl", "1m", "--negative-ttl", "1m")
	folder := m.path("inbox")
	for i := range 20 {
		os.WriteFile(filepath.Join(folder, "doc-"+strconv.Itoa(i)+".odt"), []byte("x"), 0o644)
	}
	browse := func() string {
		t.Helper()
		out := gio(t, "list", "-h", "-a", "*", folder)
		for _, probe := range []string{".hidden", ".directory", "desktop.ini", ".Trash", ".xdg-volume-info",
			"autorun.inf", ".DS_Store"} {
			if _, err := os.Lstat(filepath.Join(folder, probe)); !os.IsNotExist(err) {
				t.Errorf("probe %s: %v, want ENOENT", probe, err)
			}
		}
		for _, x := range []string{"security.selinux", "system.posix_acl_access", "user.xdg.origin.url"} {
			cmd := exec.Command("getfattr", "-n", x, filepath.Join(folder, "doc-1.odt"))
			if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "No such attribute") {
				t.Errorf("getfattr %s: %v %s, want ENODATA", x, err, b)
			}
		}
		return out
	}
	// A new client, as the next person to open the folder would be.
	m.unmount()
	m = startMount(t, "", "--metadata-ttl", "1m", "--negative-ttl", "1m")
	folder = m.path("inbox")
	first := m.requests(func() { browse() })
	t.Logf("first browse of a folder of 21 files: %v", first)
	if first["ListObjectsV2"] > 2 || first["HeadObject"] > 22 {
		t.Errorf("first browse: %v, want a listing of the root and the folder, ≤ one HEAD per object", first)
	}
	var listing string
	if again := m.requests(func() { listing = browse() }); len(again) != 0 {
		t.Errorf("browsing the listed folder again cost %v, want no request", again)
	}
	for _, want := range []string{"from-sdk.txt\t14\t(regular)", "xattr::origin=portal", "doc-19.odt\t1\t(regular)"} {
		if !strings.Contains(listing, want) {
			t.Errorf("gio list -a '*' lacks %q:\n%s", want, listing)
		}
	}
}

// TestGioTrash: trash on the mount follows the freedesktop trash
// specification — a .Trash-UID folder at the top of the mount — and gvfs's
// trash:// lists, restores and empties it.
func TestGioTrash(t *testing.T) {
	need(t)
	freshClient(t)
	m := startMount(t, "")
	os.MkdirAll(m.path("case-12/evidence"), 0o755)
	os.WriteFile(m.path("case-12/evidence/photo.jpg"), []byte("jpeg"), 0o644)
	os.WriteFile(m.path("case-12/notes.txt"), []byte("notes"), 0o644)

	gio(t, "trash", m.path("case-12/notes.txt"), m.path("case-12/evidence"))
	trash := ".Trash-" + strconv.Itoa(os.Getuid())
	if st, err := os.Stat(m.path(trash)); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("trash folder: %v, %v: want %s with mode 0700", st, err, trash)
	}
	if got, err := os.ReadFile(m.path(trash + "/files/notes.txt")); err != nil || string(got) != "notes" {
		t.Errorf("trashed file: %q, %v", got, err)
	}
	if got, err := os.ReadFile(m.path(trash + "/info/notes.txt.trashinfo")); err != nil ||
		!strings.Contains(string(got), "Path=case-12/notes.txt\n") {
		t.Errorf("trash info (relative to the top of the mount, as the spec asks): %q, %v", got, err)
	}
	keys := listKeys(t, "")
	for _, want := range []string{trash + "/files/notes.txt", trash + "/files/evidence/photo.jpg",
		trash + "/info/notes.txt.trashinfo", trash + "/info/evidence.trashinfo"} {
		if !slices.Contains(keys, want) {
			t.Errorf("S3 lacks %s after trashing: %v", want, keys)
		}
	}
	if slices.Contains(keys, "case-12/notes.txt") || slices.Contains(keys, "case-12/evidence/photo.jpg") {
		t.Errorf("trashed items still in place: %v", keys)
	}

	// trash:// is served by gvfsd-trash, reached over a D-Bus session bus.
	work := t.TempDir()
	script := `set -e
gio trash --list > "$1/listed"
gio trash --restore "$(grep '/case-12/notes.txt$' "$1/listed" | cut -f1)"
gio trash --list > "$1/restored"
gio trash --empty
gio trash --list > "$1/emptied"
# gvfsd-trash deletes what it moved to expunged/ in the background: keep
# its session alive until it is done, as a desktop session would be.
for i in $(seq 300); do [ -z "$(ls -A "$2/expunged")" ] && break; sleep 0.1; done`
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dbus-run-session", "--", "sh", "-c", script, "sh", work, m.path(trash))
	// gvfs daemons outlive the session and hold its output pipe: do not
	// wait for them once the session has ended or been killed.
	cmd.WaitDelay = 5 * time.Second
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gio trash --list/--restore/--empty under dbus-run-session: %v\n%s", err, b)
	}
	ours := func(file string) []string {
		b, err := os.ReadFile(filepath.Join(work, file))
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if _, orig, ok := strings.Cut(l, "\t"); ok && strings.HasPrefix(orig, m.dir+"/") {
				lines = append(lines, strings.TrimPrefix(orig, m.dir+"/"))
			}
		}
		slices.Sort(lines)
		return lines
	}
	if got := ours("listed"); !slices.Equal(got, []string{"case-12/evidence", "case-12/notes.txt"}) {
		t.Errorf("gio trash --list shows %q", got)
	}
	if got := ours("restored"); !slices.Equal(got, []string{"case-12/evidence"}) {
		t.Errorf("after restoring notes.txt the trash lists %q", got)
	}
	if got, err := os.ReadFile(m.path("case-12/notes.txt")); err != nil || string(got) != "notes" {
		t.Errorf("restored file: %q, %v", got, err)
	}
	if got := ours("emptied"); len(got) != 0 {
		t.Errorf("after emptying the trash lists %q", got)
	}
	run(t, "sync", m.dir) // sends the batched deletes
	for _, k := range listKeys(t, trash+"/") {
		if !strings.HasSuffix(k, "/") {
			t.Errorf("S3 still holds %s after the trash was emptied", k)
		}
	}
	if getObject(t, "case-12/notes.txt") != "notes" {
		t.Error("restored file not back in S3")
	}
}

// TestGioSeededFolder: a file manager opens a client's folder another
// client wrote (10 subfolders of 30 files, no folder markers, as the SDK
// or aws s3 cp leaves them, and an 80 MiB video without an extension) on
// a mount that never saw it. Listing the folder with what a file manager
// shows, counting each subfolder's items and sniffing the video's type
// cost listings, one HEAD per top-level file and one MiB of the video;
// looking at the video again costs nothing. A file dragged in costs its
// upload and the self-copy of the time the file manager sets after close;
// with --write-back, the upload alone.
func TestGioSeededFolder(t *testing.T) {
	need(t)
	freshClient(t)
	for i := range 10 {
		for j := range 30 {
			putObject(t, fmt.Sprintf("seed/sub%02d/file%02d.txt", i, j), "x", nil)
		}
	}
	putObject(t, "seed/notes.pdf", "%PDF-1.4\n", nil)
	video := bytes.Repeat([]byte{0, 0, 0, 0x20, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm'}, 80<<20/12)
	if _, err := env.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket),
		Key: aws.String(clientDir + "/seed/holiday"), Body: bytes.NewReader(video)}); err != nil {
		t.Fatal(err)
	}
	m := startMount(t, "")
	browse := m.requests(func() {
		gio(t, "list", "-a", "standard::name,standard::type,standard::size,standard::is-hidden,standard::fast-content-type,time::modified,unix::mode,access::can-read", m.path("seed"))
	})
	// The subfolders have no markers: their own listings show it, with no
	// HEAD, and serve the counts below.
	if browse["HeadObject"] > 2 || browse["ListObjectsV2"] > 12 || browse["GetObject"] != 0 {
		t.Errorf("opening the folder: %v, want ≤ 12 LIST, ≤ 2 HEAD (the top-level files), no GET", browse)
	}
	count := func(attributes string) map[string]int64 {
		return m.requests(func() {
			for i := range 10 {
				if out := gio(t, "list", "-a", attributes, m.path(fmt.Sprintf("seed/sub%02d", i))); strings.Count(out, "\n") != 30 {
					t.Errorf("gio list of sub%02d:\n%s", i, out)
				}
			}
		})
	}
	names := m.requests(func() {
		for i := range 10 {
			run(t, "ls", "-f", m.path(fmt.Sprintf("seed/sub%02d", i)))
			run(t, "find", m.path(fmt.Sprintf("seed/sub%02d", i)), "-name", "*.txt")
		}
	})
	if names["HeadObject"] != 0 {
		t.Errorf("ls -f and find -name of each subfolder: %v, want no HEAD", names)
	}
	// GLib's enumerator lstat()s every entry whatever it is asked for
	// (gio list shows sizes and types; Nautilus counts items asking for
	// is-hidden and is-backup): a HEAD for each object never seen, once.
	nautilus := "standard::name,standard::is-hidden,standard::is-backup"
	if first := count(nautilus); first["HeadObject"] > 300 {
		t.Errorf("Nautilus's count: %v, want ≤ 1 HEAD per object", first)
	}
	if again := count(nautilus); again["HeadObject"] != 0 {
		t.Errorf("Nautilus's count, again: %v, want no HEAD", again)
	}
	sniff := func() map[string]int64 {
		return m.requests(func() {
			if out := gio(t, "info", "-a", "standard::content-type", m.path("seed/holiday")); !strings.Contains(out, "video/mp4") {
				t.Errorf("content type of the video:\n%s", out)
			}
		})
	}
	if first := sniff(); first["GetObject"] != 1 {
		t.Errorf("first type check: %v, want 1 GET", first)
	}
	if again := sniff(); again["GetObject"] != 0 {
		t.Errorf("second type check: %v, want no GET", again)
	}
	var st struct {
		DataCacheBytes int64 `json:"data_cache_bytes"`
	}
	if out, err := s3driveCmd("status", m.dir, "--json"); err != nil || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if st.DataCacheBytes > 4<<20 {
		t.Errorf("checking the video's type twice kept %d bytes of it, want ≤ 4 MiB", st.DataCacheBytes)
	}

	local := filepath.Join(t.TempDir(), "scan.pdf")
	os.WriteFile(local, []byte("%PDF-1.4 scanned\n"), 0o644)
	dragged := m.requests(func() {
		gio(t, "copy", "--preserve", local, m.path("seed/scan.pdf"))
		run(t, "sync", m.path("seed")) // the time set after close waits, as a chmod does
	})
	if dragged["PutObject"] != 1 || dragged["CopyObject"] > 1 {
		t.Errorf("gio copy of one file: %v, want 1 PUT and at most the time's self-copy", dragged)
	}
	m.unmount()

	wb := startMount(t, "", "--write-back")
	dragged = wb.requests(func() {
		gio(t, "copy", "--preserve", local, wb.path("seed/scan2.pdf"))
		run(t, "sync", wb.path("seed/scan2.pdf")) // fsync: waits for the upload
	})
	if dragged["PutObject"] != 1 || dragged["CopyObject"] != 0 {
		t.Errorf("gio copy with --write-back: %v, want 1 PUT carrying the time, no copy", dragged)
	}
	if h := head(t, "seed/scan2.pdf"); h.Metadata["mtime"] == "" {
		t.Errorf("the time gio set is not stored: %v", h.Metadata)
	}
}
