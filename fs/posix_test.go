package fs

import (
	"fmt"
	"os"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3drive/s3drive/s3backend"
)

// TestDotEntriesAndRootInode: ls -a shows . and .. with their inode
// numbers, and the root's inode number is 1, as FUSE's root node is.
func TestDotEntriesAndRootInode(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("sub/f.txt", []byte("x"), nil)
	dir, _ := testMount(t, mem)
	for _, d := range []string{dir, filepath.Join(dir, "sub")} {
		out, err := exec.Command("ls", "-a1i", d).CombinedOutput()
		if err != nil {
			t.Fatalf("ls -a %s: %v %s", d, err, out)
		}
		var dots []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && (f[1] == "." || f[1] == "..") {
				if f[0] == "0" {
					t.Errorf("ls -ai %s: %q has inode 0", d, f[1])
				}
				dots = append(dots, f[1])
			}
		}
		if strings.Join(dots, " ") != ". .." {
			t.Errorf("ls -a %s shows %q, want . and ..:\n%s", d, dots, out)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil || st.Ino != 1 {
		t.Errorf("root inode %d, %v; want 1", st.Ino, err)
	}
}

// TestCreateModeZero: open(O_CREAT, 0) makes a file of mode 0000, which
// stays so after upload and a fresh lookup.
func TestCreateModeZero(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	p := filepath.Join(dir, "zero")
	fd, err := syscall.Open(p, syscall.O_CREAT|syscall.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil || st.Mode&0o7777 != 0 {
		t.Errorf("mode while open %o, %v; want 0", st.Mode&0o7777, err)
	}
	syscall.Close(fd)
	settle(t, fsys)
	info, _ := mem.Head(t.Context(), "zero")
	if info.Metadata["mode"] != "32768" {
		t.Errorf("stored mode %q, want 32768 (S_IFREG|0)", info.Metadata["mode"])
	}
	dir2, _ := testMount(t, mem)
	if err := syscall.Stat(filepath.Join(dir2, "zero"), &st); err != nil || st.Mode&0o7777 != 0 {
		t.Errorf("mode on another mount %o, %v; want 0", st.Mode&0o7777, err)
	}
}

// TestChownClearsSetID: a chown by the file's (non-root) owner clears the
// set-user-ID and set-group-ID bits, as POSIX and local disks do.
func TestChownClearsSetID(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMountTweaked(t, mem, Options{}, func(o *gofs.Options) { o.MountOptions.AllowOther = true })
	os.Chmod(filepath.Dir(dir), 0o755) // the test's temporary folder, for the other user
	os.Chmod(dir, 0o777)
	p := filepath.Join(dir, "tool")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o6755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("chown", "65534:65534", p)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chown by the owner: %v %s", err, out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil || st.Mode&0o6000 != 0 {
		t.Errorf("mode after the owner's chown %o, %v; want the set-ID bits cleared", st.Mode&0o7777, err)
	}
	settle(t, fsys)
	if err := fsys.FlushAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if info, _ := mem.Head(t.Context(), "tool"); info.Metadata["mode"] != "33261" { // S_IFREG|0755
		t.Errorf("stored mode %q, want 33261", info.Metadata["mode"])
	}
}

// TestNewFilesBelongToTheirCreator: a file, folder and link made by
// another user belong to that user, also on a fresh mount, and the user
// can chmod and append to the file; the mount's own user stores nothing.
func TestNewFilesBelongToTheirCreator(t *testing.T) {
	mem := s3backend.NewMemory()
	allowOther := func(o *gofs.Options) { o.MountOptions.AllowOther = true }
	root, fsys := testMountTweaked(t, mem, Options{}, allowOther)
	os.Chmod(filepath.Dir(root), 0o755)
	dir := filepath.Join(root, "shared")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777) // past the umask
	as := func(args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v as 65534: %v %s", args, err, out)
		}
	}
	as("sh", "-c", "echo one > "+filepath.Join(dir, "theirs.txt"))
	as("mkdir", filepath.Join(dir, "their-folder"))
	as("ln", "-s", "theirs.txt", filepath.Join(dir, "their-link"))
	as("chmod", "600", filepath.Join(dir, "theirs.txt"))
	as("sh", "-c", "echo two >> "+filepath.Join(dir, "theirs.txt"))
	if err := os.WriteFile(filepath.Join(dir, "mine.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fsys.FlushAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	if info, _ := mem.Head(t.Context(), "shared/mine.txt"); info.Metadata["uid"] != "" || info.Metadata["gid"] != "" {
		t.Errorf("a file of the mount's own user stores %v", info.Metadata)
	}
	freshRoot, _ := testMountTweaked(t, mem, Options{}, allowOther)
	fresh := filepath.Join(freshRoot, "shared")
	for _, name := range []string{"theirs.txt", "their-folder", "their-link"} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(fresh, name), &st); err != nil || st.Uid != 65534 || st.Gid != 65534 {
			t.Errorf("%s on a fresh mount: owner %d:%d, %v; want 65534:65534", name, st.Uid, st.Gid, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(fresh, "theirs.txt")); err != nil || string(b) != "one\ntwo\n" {
		t.Errorf("theirs.txt: %q, %v", b, err)
	}
}

// TestSpecialFiles: a FIFO, a unix socket and a character device made in
// the mount keep their type (and device number) after a remount, stored
// as s3fs stores them: zero-byte objects whose mode says what they are.
func TestSpecialFiles(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	if err := syscall.Mkfifo(filepath.Join(dir, "p"), 0o644); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: filepath.Join(dir, "s")}); err != nil {
		t.Fatalf("binding a unix socket in the mount: %v", err)
	}
	syscall.Close(fd)
	dev := 1<<8 | 3 // makedev(1, 3): /dev/null's
	if err := syscall.Mknod(filepath.Join(dir, "null"), syscall.S_IFCHR|0o666, dev); err != nil {
		t.Fatalf("mknod c 1 3: %v", err)
	}
	settle(t, fsys)
	if info, _ := mem.Head(t.Context(), "null"); info.Size != 0 || info.Metadata["mode"] != fmt.Sprint(syscall.S_IFCHR|0o666&^umask()) || info.Metadata["rdev"] != "259" {
		t.Errorf("the device's object: %+v, want 0 bytes, mode S_IFCHR|0666 less the umask, rdev 259", info)
	}
	fresh, _ := testMount(t, mem)
	for name, want := range map[string]uint32{"p": syscall.S_IFIFO, "s": syscall.S_IFSOCK, "null": syscall.S_IFCHR} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(fresh, name), &st); err != nil || st.Mode&syscall.S_IFMT != want {
			t.Errorf("%s after a remount: mode %o, %v; want type %o", name, st.Mode, err, want)
		}
		if name == "null" && st.Rdev != uint64(dev) {
			t.Errorf("device number %d, want %d", st.Rdev, dev)
		}
	}
	// The FIFO works as one: the kernel's, never the drive's.
	go func() {
		w, err := os.OpenFile(filepath.Join(fresh, "p"), os.O_WRONLY, 0)
		if err == nil {
			w.WriteString("through the pipe")
			w.Close()
		}
	}()
	if b, err := os.ReadFile(filepath.Join(fresh, "p")); err != nil || string(b) != "through the pipe" {
		t.Errorf("reading the FIFO: %q, %v", b, err)
	}
	if err := os.Remove(filepath.Join(fresh, "p")); err != nil {
		t.Errorf("rm of a FIFO: %v", err)
	}
}

// umask is the process's file mode creation mask.
func umask() uint32 {
	old := syscall.Umask(0)
	syscall.Umask(old)
	return uint32(old)
}

// TestImplicitFolderTimeIsStable: a folder with no marker shows the same
// time on every mount (the epoch, as s3fs).
func TestImplicitFolderTimeIsStable(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("implicit/f.txt", []byte("x"), nil)
	var times []int64
	for range 2 {
		dir, _ := testMount(t, mem)
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, "implicit"), &st); err != nil {
			t.Fatal(err)
		}
		times = append(times, st.Mtim.Sec)
	}
	if times[0] != 0 || times[1] != 0 {
		t.Errorf("implicit folder mtimes %v on two mounts, want the epoch on both", times)
	}
}

// TestOldStyleFolderObject: s3fs before 1.8x marked a folder with a key
// without the slash and Content-Type application/x-directory; beside
// old/x it is the folder old holding x, listed once.
func TestOldStyleFolderObject(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.Upload(t.Context(), "old", strings.NewReader(""), 0, s3backend.PutOptions{ContentType: "application/x-directory"})
	mem.PutObject("old/x", []byte("x"), nil)
	mem.Upload(t.Context(), "empty", strings.NewReader(""), 0, s3backend.PutOptions{ContentType: "application/x-directory"})
	dir, _ := testMount(t, mem)
	// old is listed once, as a folder (the listing shows its slash too);
	// empty's type shows once it is looked up (a listing has no types).
	if got := names(t, dir); strings.Join(got, ",") != "empty,old/" {
		t.Errorf("the root lists %v, want empty and old/ once each", got)
	}
	for _, name := range []string{"old", "empty"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || !st.IsDir() {
			t.Errorf("%s: %v, %v; want a folder", name, st, err)
		}
	}
	if got := names(t, filepath.Join(dir, "old")); strings.Join(got, ",") != "x" {
		t.Errorf("old holds %v, want x", got)
	}
}

// TestCtimeAndAtime: chmod moves ctime and keeps mtime; touch -a sets the
// access time alone; both hold on a fresh mount. Reads move neither.
func TestCtimeAndAtime(t *testing.T) {
	mem := s3backend.NewMemory()
	dir, fsys := testMount(t, mem)
	p := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Unix(1_500_000_000, 0)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("touch", "-a", "-d", "@1900000000", p).CombinedOutput(); err != nil {
		t.Fatalf("touch -a: %v %s", err, out)
	}
	os.ReadFile(p)
	if err := fsys.FlushAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	settle(t, fsys)
	fresh, _ := testMount(t, mem)
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(fresh, "f.txt"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mtim.Sec != old.Unix() {
		t.Errorf("mtime %d, want %d kept by chmod and touch -a", st.Mtim.Sec, old.Unix())
	}
	if st.Atim.Sec != 1_900_000_000 {
		t.Errorf("atime %d, want 1900000000", st.Atim.Sec)
	}
	if age := time.Since(time.Unix(st.Ctim.Sec, 0)); age < 0 || age > time.Minute {
		t.Errorf("ctime %d, want the time of the chmod (now)", st.Ctim.Sec)
	}
}

// TestRootAttributes: touch and chmod of a prefix mount's root are stored
// on the prefix's marker and hold on a fresh mount; a bucket root keeps
// them in its metadata store.
func TestRootAttributes(t *testing.T) {
	mem := s3backend.NewMemory()
	mem.PutObject("f.txt", []byte("x"), nil)
	dir, fsys := testMountWith(t, mem, Options{PrefixRoot: true})
	if out, err := exec.Command("touch", "-d", "@1000000000", dir).CombinedOutput(); err != nil {
		t.Fatalf("touch the root: %v %s", err, out)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := fsys.sendWaiting(t.Context()); err != nil {
		t.Fatal(err)
	}
	if info, err := mem.Head(t.Context(), ""); err != nil || info.Metadata["mtime"] != "1000000000" {
		t.Fatalf("the prefix's marker: %+v, %v", info, err)
	}
	fresh, _ := testMountWith(t, mem, Options{PrefixRoot: true})
	var st syscall.Stat_t
	if err := syscall.Stat(fresh, &st); err != nil || st.Mtim.Sec != 1_000_000_000 || st.Mode&0o777 != 0o750 {
		t.Errorf("the root on a fresh mount: mtime %d mode %o, %v; want 1000000000 and 750", st.Mtim.Sec, st.Mode&0o777, err)
	}
	if got := names(t, fresh); strings.Join(got, ",") != "f.txt" {
		t.Errorf("the root lists %v: its own marker must not show", got)
	}
}
