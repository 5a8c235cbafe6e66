package fs

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

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
