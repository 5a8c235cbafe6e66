package integration

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// asNobody runs a command as uid and gid 65534.
func asNobody(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v as 65534: %v %s", args, err, out)
	}
}

// TestPOSIXOnS3: what S3 can hold of POSIX, through versitygw and a
// remount: special files keep their types, files their creators, chown
// clears set-ID bits, ctime and atime hold, the root keeps its times,
// folders without markers keep theirs, and readdir shows . and ..
func TestPOSIXOnS3(t *testing.T) {
	need(t)
	freshClient(t)
	putObject(t, "implicit/inside.txt", "x", nil)
	cache := t.TempDir()
	m := startMount(t, cache, "--allow-other")
	os.Chmod(filepath.Dir(m.dir), 0o755) // the test's temporary folder, for the other user

	run(t, "mkfifo", m.path("p"))
	ln, err := net.Listen("unix", m.path("s"))
	if err != nil {
		t.Fatalf("binding a unix socket in the mount: %v", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // the socket file stays, as a C server's would
	ln.Close()
	run(t, "mknod", m.path("null"), "c", "1", "3")

	if err := os.Mkdir(m.path("shared"), 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(m.path("shared"), 0o777)
	asNobody(t, "sh", "-c", "echo theirs > "+m.path("shared/theirs.txt"))
	asNobody(t, "chmod", "6755", m.path("shared/theirs.txt"))
	asNobody(t, "chown", "65534:65534", m.path("shared/theirs.txt"))

	fd, err := syscall.Open(m.path("zero"), syscall.O_CREAT|syscall.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd)

	run(t, "touch", "-d", "@1500000000", m.path("times.txt"))
	run(t, "chmod", "600", m.path("times.txt"))
	run(t, "touch", "-a", "-d", "@1900000000", m.path("times.txt"))
	run(t, "touch", "-d", "@1000000000", m.dir)

	var before syscall.Stat_t
	if err := syscall.Stat(m.path("implicit"), &before); err != nil {
		t.Fatal(err)
	}
	if out := run(t, "ls", "-a", m.dir); !strings.HasPrefix(out, ".\n..\n") {
		t.Errorf("ls -a does not start with . and ..:\n%s", out)
	}
	m.unmount()

	m = startMount(t, t.TempDir(), "--allow-other") // a fresh cache: only S3 remembers
	for name, want := range map[string]uint32{"p": syscall.S_IFIFO, "s": syscall.S_IFSOCK, "null": syscall.S_IFCHR} {
		var st syscall.Stat_t
		if err := syscall.Lstat(m.path(name), &st); err != nil || st.Mode&syscall.S_IFMT != want {
			t.Errorf("%s after a remount: mode %o, %v; want type %o", name, st.Mode, err, want)
		}
		if name == "null" && st.Rdev != 1<<8|3 {
			t.Errorf("null's device number %#x, want 1,3", st.Rdev)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(m.path("shared/theirs.txt"), &st); err != nil || st.Uid != 65534 || st.Mode&0o6000 != 0 {
		t.Errorf("theirs.txt after a remount: uid %d mode %o, %v; want 65534, set-ID bits cleared by the owner's chown", st.Uid, st.Mode&0o7777, err)
	}
	asNobody(t, "chmod", "600", m.path("shared/theirs.txt"))
	if err := syscall.Stat(m.path("zero"), &st); err != nil || st.Mode&0o7777 != 0 {
		t.Errorf("open(O_CREAT, 0): mode %o, %v; want 0000", st.Mode&0o7777, err)
	}
	if err := syscall.Stat(m.path("times.txt"), &st); err != nil || st.Mtim.Sec != 1_500_000_000 || st.Atim.Sec != 1_900_000_000 ||
		time.Since(time.Unix(st.Ctim.Sec, 0)) > 5*time.Minute {
		t.Errorf("times.txt: mtime %d atime %d ctime %d, %v; want 1500000000, 1900000000 and about now", st.Mtim.Sec, st.Atim.Sec, st.Ctim.Sec, err)
	}
	if err := syscall.Stat(m.dir, &st); err != nil || st.Mtim.Sec != 1_000_000_000 || st.Ino != 1 {
		t.Errorf("the root: mtime %d ino %d, %v; want 1000000000 and 1", st.Mtim.Sec, st.Ino, err)
	}
	if err := syscall.Stat(m.path("implicit"), &st); err != nil || st.Mtim != before.Mtim {
		t.Errorf("a folder without a marker: mtime %v, then %v after a remount", before.Mtim, st.Mtim)
	}
}

// TestOldStyleFolderOnServer: s3fs's old folder object "old" (no slash,
// Content-Type application/x-directory) is a folder. versitygw's posix
// backend stores keys as paths, so "old" beside "old/x" cannot exist
// there (409 ExistingObjectIsDirectory); that case is in the unit suite.
func TestOldStyleFolderOnServer(t *testing.T) {
	need(t)
	freshClient(t)
	_, err := env.s3.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(clientDir + "/old"),
		ContentType: aws.String("application/x-directory"), Body: strings.NewReader("")})
	if err != nil {
		t.Fatal(err)
	}
	m := startMount(t, "")
	if st, err := os.Stat(m.path("old")); err != nil || !st.IsDir() {
		t.Errorf("old: %v, %v; want a folder", st, err)
	}
	if out := run(t, "ls", "-A", m.path("old")); strings.TrimSpace(out) != "" {
		t.Errorf("old holds %q, want nothing", out)
	}
}
