package integration

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestWriteBackSurvivesKill: with --write-back, cp -r returns with success
// while the server refuses every connection (close waits for the local
// disk, not S3); the mount is then killed with SIGKILL, and the next mount
// of the same cache directory puts every file in S3, byte for byte.
func TestWriteBackSurvivesKill(t *testing.T) {
	need(t)
	freshClient(t)
	src := filepath.Join(runtime.GOROOT(), "src", "crypto", "internal", "fips140", "sha256")
	proxy := startFaultProxy(t, env.endpoint, 16)
	cacheDir := t.TempDir()
	m := startMountVia(t, proxy.URL, cacheDir, "--write-back", "--timeout", "5s")
	run(t, "ls", m.dir)
	proxy.setMode("refuse")
	if out, err := runBounded(t, "cp", "-r", src, m.path("tree")); err != nil {
		t.Fatalf("cp -r with --write-back and the server down: %v\n%s", err, out)
	}
	out, err := s3driveCmd("status", m.dir, "--json")
	if err != nil || !strings.Contains(out, "sha256.go") || !strings.Contains(out, `"write_back"`) {
		t.Errorf("status during the outage does not show the write-back queue: %v\n%s", err, out)
	}
	// A queued file renamed before the crash lands under its new name.
	run(t, "mv", m.path("tree/sha256.go"), m.path("tree/renamed.go"))
	m.kill9()
	proxy.setMode("pass")

	m = startMountVia(t, proxy.URL, cacheDir)
	var files []string
	filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(src, p)
			files = append(files, rel)
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatal("no files in the source tree")
	}
	for _, rel := range files {
		want, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		key := filepath.ToSlash(filepath.Join("tree", rel))
		if key == "tree/sha256.go" {
			key = "tree/renamed.go"
		}
		if !waitFor(t, recovered, func() bool { return inS3(key, want) }) {
			t.Errorf("%s not in S3, byte for byte, %s after the remount:\n%s", key, recovered, m.stderr.String())
		}
	}
	if objectExists("tree/sha256.go") {
		t.Error("the renamed file's old name is in S3 after recovery")
	}
}
