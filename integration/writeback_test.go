package integration

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestWriteBackSurvivesKill: with --write-back, cp -r returns with success
// before its files are in S3; the mount is then killed with SIGKILL, and
// the next mount of the same cache directory puts every file in S3, byte
// for byte — under the name it had last.
func TestWriteBackSurvivesKill(t *testing.T) {
	need(t)
	fips := filepath.Join(runtime.GOROOT(), "src", "crypto", "internal", "fips140")

	// The server refuses every connection: close cannot have waited for it.
	t.Run("server down", func(t *testing.T) {
		freshClient(t)
		src := filepath.Join(fips, "sha256")
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
		checkTree(t, m, src, map[string]string{"sha256.go": "renamed.go"})
		if objectExists("tree/sha256.go") {
			t.Error("the renamed file's old name is in S3 after recovery")
		}
	})

	// The server is 5 ms away each way: cp -r of the whole tree returns
	// while most uploads have not started (they wait 1 s), kill -9 at once.
	t.Run("5 ms away", func(t *testing.T) {
		freshClient(t)
		proxy := startFaultProxy(t, env.endpoint, 17)
		proxy.setFaults(0, 0, 0, 10*time.Millisecond)
		cacheDir := t.TempDir()
		m := startMountVia(t, proxy.URL, cacheDir, "--write-back")
		run(t, "cp", "-r", fips, m.path("tree"))
		m.kill9()
		m = startMountVia(t, proxy.URL, cacheDir)
		checkTree(t, m, fips, nil)
		const recovery = "recovery: uploaded data a previous run could not"
		if !m.stderr.has(t, recovery) {
			t.Errorf("nothing was left for recovery: the test killed the mount too late\n%s", m.stderr.String())
		} else {
			t.Logf("%d files uploaded by recovery", strings.Count(m.stderr.String(), recovery))
		}
	})
}

// checkTree waits (up to 30 s in all) until every file under src is in S3
// under tree/, byte for byte; renamed maps a file's path to the one it was
// renamed to.
func checkTree(t *testing.T, m *mount, src string, renamed map[string]string) {
	t.Helper()
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
	deadline := time.Now().Add(30 * time.Second)
	for _, rel := range files {
		want, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		if to, ok := renamed[rel]; ok {
			rel = to
		}
		key := filepath.ToSlash(filepath.Join("tree", rel))
		if !waitFor(t, max(time.Until(deadline), 0), func() bool { return inS3(key, want) }) {
			t.Errorf("%s not in S3, byte for byte, 30 s after the remount:\n%s", key, m.stderr.String())
			return
		}
	}
}
