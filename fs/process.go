package fs

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// processOf returns the process (thread group) a request came from, or 0
// if it is unknown. FUSE names the calling thread; a program that writes
// from one thread and closes from another is still one writer.
func processOf(ctx context.Context) int {
	caller, ok := fuse.FromContext(ctx)
	if !ok || caller.Pid == 0 {
		return 0
	}
	tid := int(caller.Pid)
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return tid
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Tgid:"); ok {
			if tgid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return tgid
			}
		}
	}
	return tid
}

// holdsAnother reports whether the process closing a descriptor of this
// mount's file ino still holds another descriptor on it. The kernel takes
// the closing descriptor out of the table before it sends FLUSH, so any
// match is a second one: a shell redirection (cmd > file) and dd open the
// file, dup2 it onto another descriptor and close the original, and that
// close must not upload the file, still empty, as if it were finished.
// Unknown (no /proc, mount not found) counts as no.
func (f *FS) holdsAnother(ctx context.Context, ino uint64) bool {
	caller, ok := fuse.FromContext(ctx)
	mnt := f.mountID()
	if !ok || caller.Pid == 0 || mnt == "" {
		return false
	}
	dir := fmt.Sprintf("/proc/%d/fdinfo", caller.Pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	want := strconv.FormatUint(ino, 10)
	for _, e := range entries {
		b, err := os.ReadFile(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		var gotMnt, gotIno string
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "mnt_id:"); ok {
				gotMnt = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(line, "ino:"); ok {
				gotIno = strings.TrimSpace(v)
			}
		}
		if gotMnt == mnt && gotIno == want {
			return true
		}
	}
	return false
}

// mountID is the kernel's id of this mount (mountinfo's first field), found
// by its mountpoint once; "" if unknown.
func (f *FS) mountID() string {
	f.mntOnce.Do(func() {
		if f.opts.Mountpoint == "" {
			return
		}
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(b), "\n") {
			if fields := strings.Fields(line); len(fields) > 4 && fields[4] == f.opts.Mountpoint {
				f.mntID = fields[0] // the last one: mounted over any older
			}
		}
	})
	return f.mntID
}
