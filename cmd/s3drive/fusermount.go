package main

import (
	"os/exec"
)

// execFusermount unmounts as an unprivileged user.
func execFusermount(mp string) ([]byte, error) {
	for _, name := range []string{"fusermount3", "fusermount"} {
		if path, err := exec.LookPath(name); err == nil {
			return exec.Command(path, "-u", mp).CombinedOutput()
		}
	}
	return nil, exec.ErrNotFound
}
