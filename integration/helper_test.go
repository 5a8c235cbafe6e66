package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMountHelper: with s3drive on PATH, mount -t fuse.s3drive (through
// fuse3's mount.fuse3, as /etc/fstab does) mounts with -o options and
// returns once the drive serves, leaving the daemon behind; umount ends
// the daemon. Options mount(8) and systemd add are accepted; a mistake
// fails the mount command with the drive's own line.
func TestMountHelper(t *testing.T) {
	need(t)
	freshClient(t)
	installOnStandardPath(t)
	// Credentials as an fstab line has them: a file named in the options.
	creds := filepath.Join(t.TempDir(), "acme.credentials")
	if err := os.WriteFile(creds, []byte("[default]\naws_access_key_id = "+accessKey+"\naws_secret_access_key = "+secretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var helperEnv []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			helperEnv = append(helperEnv, kv)
		}
	}
	helperEnv = append(helperEnv, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true")
	mountCmd := func(source, dir, opts string) (string, error) {
		cmd := exec.Command("mount", "-t", "fuse.s3drive", source, dir, "-o", opts)
		cmd.Env = helperEnv
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	dir, cache := t.TempDir(), t.TempDir()
	source := "s3://" + bucket + "/" + clientDir
	opts := "endpoint=" + env.endpoint + ",credentials_file=" + creds + ",cache_dir=" + cache + ",uid=4242,allow_other,_netdev,nofail,defaults,x-systemd.automount,noauto"
	putObject(t, "from-elsewhere.txt", "x", nil)
	if out, err := mountCmd(source, dir, opts); err != nil {
		t.Fatalf("mount -t fuse.s3drive: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if mounted, _ := isMounted(dir); mounted {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	// mount returned: the drive serves now, with the options given.
	if err := os.WriteFile(filepath.Join(dir, "from-fstab.txt"), []byte("mounted by mount(8)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := getObject(t, "from-fstab.txt"); got != "mounted by mount(8)\n" {
		t.Errorf("S3 holds %q", got)
	}
	// uid=4242 owns what has no owner of its own (a file root writes is
	// root's, as on a local disk).
	if out := run(t, "stat", "-c", "%u", filepath.Join(dir, "from-elsewhere.txt")); strings.TrimSpace(out) != "4242" {
		t.Errorf("uid=4242: an object without an owner shows owner %s", out)
	}
	js, err := s3driveCmd("status", dir, "--json")
	if err != nil {
		t.Fatalf("status of the helper's mount: %v %s", err, js)
	}
	var st struct{ PID int }
	if err := json.Unmarshal([]byte(js), &st); err != nil || st.PID == 0 {
		t.Fatalf("status --json: %v %s", err, js)
	}

	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	if mounted, _ := isMounted(dir); mounted {
		t.Error("still mounted after umount")
	}
	if !waitFor(t, 30*time.Second, func() bool { return syscall.Kill(st.PID, 0) != nil }) {
		t.Errorf("the daemon (pid %d) still runs after umount", st.PID)
	}

	for _, c := range []struct{ source, opts, want string }{
		{"s3://no-such-bucket", "endpoint=" + env.endpoint + ",credentials_file=" + creds + ",cache_dir=" + cache, `bucket "no-such-bucket" does not exist`},
		{source, "endpoint=" + env.endpoint + ",cache_dir=" + cache, "no AWS credentials found"},
		{source, "endpoint=" + env.endpoint + ",colour=blue", `unknown option "colour"`},
		{source, "endpoint", "option endpoint needs a value"},
	} {
		out, err := mountCmd(c.source, dir, c.opts)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("mount -o %s: %v %q; want a failure saying %q", c.opts, err, out, c.want)
		}
		if mounted, _ := isMounted(dir); mounted {
			t.Fatalf("mounted despite %q", c.want)
		}
	}
}

// installOnStandardPath puts the binary under test at /usr/local/bin/s3drive
// for the test: mount(8) runs helpers with a standard PATH of its own. An
// s3drive installed there already is covered by a bind mount, not touched.
func installOnStandardPath(t *testing.T) {
	t.Helper()
	const installed = "/usr/local/bin/s3drive"
	if _, err := os.Lstat(installed); err == nil {
		if err := unix.Mount(env.binary, installed, "", unix.MS_BIND, ""); err != nil {
			t.Fatalf("covering %s with the binary under test: %v", installed, err)
		}
		t.Cleanup(func() { unix.Unmount(installed, 0) })
		return
	}
	if err := os.MkdirAll(filepath.Dir(installed), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(env.binary, installed); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(installed) })
}
