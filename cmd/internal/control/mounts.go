package control

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FSType is the filesystem type s3drive mounts show in /proc/mounts.
const FSType = "fuse.s3drive"

// mount is one line of /proc/self/mountinfo.
type mount struct{ point, fsType string }

// mountinfo reads the mounts this process sees.
func mountinfo() ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [tags] - fstype source super
		pre, post, _ := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) > 4 {
			m := mount{point: Unescape(fields[4])}
			if len(tail) > 0 {
				m.fsType = tail[0]
			}
			out = append(out, m)
		}
	}
	return out, sc.Err()
}

// Mounts lists the mountpoints of the s3drive mounts this process sees.
func Mounts() ([]string, error) {
	all, err := mountinfo()
	var mps []string
	for _, m := range all {
		if m.fsType == FSType {
			mps = append(mps, m.point)
		}
	}
	return mps, err
}

// IsMountpoint reports whether anything is mounted at path (absolute).
func IsMountpoint(path string) (bool, error) {
	all, err := mountinfo()
	for _, m := range all {
		if m.point == path {
			return true, nil
		}
	}
	return false, err
}

// Unescape undoes mountinfo's octal escapes of blanks and backslashes.
func Unescape(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// ErrNotInMount means a path lies in no s3drive mount.
var ErrNotInMount = errors.New("not inside a running s3drive mount")

// Containing returns the s3drive mount that holds path (absolute, with
// symbolic links resolved) and path's place in it, slash-separated.
func Containing(path string) (mountpoint, rel string, err error) {
	mps, err := Mounts()
	if err != nil {
		return "", "", err
	}
	best := ""
	for _, mp := range mps {
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	if best == "" {
		if len(mps) == 0 {
			return "", "", fmt.Errorf("%s: %w (none is running)", path, ErrNotInMount)
		}
		return "", "", fmt.Errorf("%s: %w (mounts: %s)", path, ErrNotInMount, strings.Join(mps, ", "))
	}
	rel, err = filepath.Rel(best, path)
	if err != nil {
		return "", "", err
	}
	return best, filepath.ToSlash(rel), nil
}
