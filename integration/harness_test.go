package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3drive/s3drive/integration/s3server"
	"golang.org/x/sys/unix"
)

const (
	accessKey = s3server.AccessKey
	secretKey = s3server.SecretKey
	bucket    = "bucket"
	clientDir = "clients/acme"
)

// env is the shared test world: one S3 server and the s3drive binary.
var env struct {
	skip     string // why the suite cannot run here, if it cannot
	work     string
	binary   string
	vgw      string
	endpoint string
	server   *s3server.Server
	s3       *s3.Client
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(stressWorkerEnv); cfg != "" {
		os.Exit(stressWorker(cfg)) // a worker process of TestStressModel
	}
	code := func() int {
		var err error
		if env.work, err = os.MkdirTemp("", "s3drive-it-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(env.work)
		if err := setup(); err != nil {
			env.skip = err.Error()
		}
		defer func() {
			if env.server != nil {
				env.server.Stop()
			}
		}()
		return m.Run()
	}()
	os.Exit(code)
}

func setup() error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("/dev/fuse: %w", err)
	}
	if os.Geteuid() != 0 {
		return errors.New("the tests mount FUSE filesystems: run them as root")
	}
	// The tests also unmount with fusermount3, as users do.
	if _, err := exec.LookPath("fusermount3"); err != nil {
		return fmt.Errorf("fusermount3 missing (apt-get install fuse3): %w", err)
	}
	for tool, pkg := range map[string]string{"setfattr": "attr", "getfattr": "attr", "rsync": "rsync",
		"pgrep": "procps", "gio": "libglib2.0-bin", "dbus-run-session": "dbus", "curl": "curl", "mount.fuse3": "fuse3",
		"mount": "mount", "umount": "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s missing (apt-get install %s): %w", tool, pkg, err)
		}
	}
	// gio's trash:// listing is served by this gvfs daemon.
	if _, err := os.Stat(gvfsdTrash); err != nil {
		return fmt.Errorf("gvfs trash daemon missing (apt-get install gvfs): %w", err)
	}
	env.binary = filepath.Join(env.work, "s3drive")
	build := []string{"build", "-o", env.binary}
	if os.Getenv("S3DRIVE_RACE") == "1" {
		// Race-check the mounted binary under real programs; a report makes
		// s3drive exit non-zero, which fails the test that unmounts it.
		build = append(build, "-race")
	}
	if out, err := exec.Command("go", append(build, "../cmd/s3drive")...).CombinedOutput(); err != nil {
		return fmt.Errorf("building s3drive: %v\n%s", err, out)
	}
	vgw, err := s3server.Binary()
	if err != nil {
		return err
	}
	env.vgw = vgw
	srv, err := s3server.Start(env.vgw, filepath.Join(env.work, "s3"))
	if err != nil {
		return err
	}
	env.server, env.endpoint = srv, srv.Endpoint
	env.s3 = s3server.Client(srv.Endpoint)
	_, err = env.s3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	return err
}

// mountEnv is the environment a mount runs with: the server's credentials,
// and no AWS configuration of the machine's.
func mountEnv() []string {
	return append(os.Environ(), "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey,
		"AWS_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		// Never let the credential chain reach for the EC2 metadata address.
		"AWS_EC2_METADATA_DISABLED=true")
}

// need stops a test whose environment is missing: a failure under CI, a
// visible skip elsewhere.
func need(t *testing.T) {
	t.Helper()
	if env.skip == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("integration environment unavailable under CI: %s", env.skip)
	}
	t.Skipf("integration environment unavailable: %s", env.skip)
}

// mount is one running s3drive process.
type mount struct {
	t        *testing.T
	dir      string
	cacheDir string
	cmd      *exec.Cmd
	exited   chan error
	stderr   *daemonLog
}

// daemonLog is what a daemon wrote to stderr so far. A goroutine reads
// the pipe while the test reads the log, and a line about an event can
// arrive after the test saw the event itself (an object in S3), so tests
// wait for a line with has rather than look once.
type daemonLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *daemonLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(line + "\n")
}

func (l *daemonLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// has reports whether the log holds want, waiting up to 10 s for it.
func (l *daemonLog) has(t *testing.T, want string) bool {
	t.Helper()
	return waitFor(t, 10*time.Second, func() bool { return strings.Contains(l.String(), want) })
}

// freshClient empties the client folder so each test starts clean.
func freshClient(t *testing.T) {
	t.Helper()
	keys := listKeys(t, "")
	// Deepest first: versitygw keeps folders as directories.
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	for _, k := range keys {
		if _, err := env.s3.DeleteObject(context.Background(), &s3.DeleteObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(clientDir + "/" + k)}); err != nil {
			t.Fatal(err)
		}
	}
}

// startMount mounts s3://bucket/clients/acme with a cache dir of its own
// (or cacheDir, to test what survives a remount).
func startMount(t *testing.T, cacheDir string, extra ...string) *mount {
	t.Helper()
	return startMountVia(t, env.endpoint, cacheDir, extra...)
}

// startMountVia is startMount with the mount talking to endpoint (a
// fault-injecting proxy, another server).
func startMountVia(t *testing.T, endpoint, cacheDir string, extra ...string) *mount {
	t.Helper()
	return startMountAs(t, endpoint, "s3://"+bucket+"/"+clientDir, cacheDir, mountEnv(), extra...)
}

// startMountAs is startMountVia of source with the environment environ
// (other credentials).
func startMountAs(t *testing.T, endpoint, source, cacheDir string, environ []string, extra ...string) *mount {
	t.Helper()
	need(t)
	if cacheDir == "" {
		cacheDir = t.TempDir()
	}
	m := &mount{t: t, dir: t.TempDir(), cacheDir: cacheDir, exited: make(chan error, 1), stderr: &daemonLog{}}
	args := append([]string{"mount", "--endpoint", endpoint, "--cache-dir", cacheDir, source, m.dir}, extra...)
	m.cmd = exec.Command(env.binary, args...)
	m.cmd.Env = environ
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := m.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stderrRead := make(chan struct{})
	go func() {
		defer close(stderrRead)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			m.stderr.add(sc.Text())
		}
		io.Copy(io.Discard, stderr) // past a line too long, never block the daemon
	}()
	ready := make(chan bool, 1)
	cmd := m.cmd // m.cmd goes nil once a test is done with the process
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "s3drive: mounted") {
				if !strings.Contains(sc.Text(), "s3drive unmount "+m.dir) {
					t.Errorf("the mount's ready line does not say how to stop it: %q", sc.Text())
				}
				ready <- true
			}
		}
		ready <- false
		<-stderrRead // Wait closes the pipes: read them to the end first
		m.exited <- cmd.Wait()
	}()
	select {
	case ok := <-ready:
		if !ok {
			<-m.exited
			t.Fatalf("s3drive exited before mounting:\n%s", m.stderr.String())
		}
	case <-time.After(60 * time.Second):
		m.cmd.Process.Kill()
		t.Fatalf("s3drive did not mount within 60s:\n%s", m.stderr.String())
	}
	t.Cleanup(func() { m.unmount() })
	return m
}

// unmount asks s3drive to flush and leave, as a user would, and waits.
func (m *mount) unmount() {
	m.t.Helper()
	if m.cmd == nil {
		return
	}

	if out, err := exec.Command(env.binary, "unmount", m.dir).CombinedOutput(); err != nil {
		m.t.Errorf("s3drive unmount: %v: %s", err, out)
		m.cmd.Process.Signal(syscall.SIGTERM)
	}
	m.waitExit("s3drive unmount")
}

// waitExit waits for s3drive to exit cleanly after being told to by how,
// and checks that the mount is gone.
func (m *mount) waitExit(how string) {
	m.t.Helper()
	select {
	case err := <-m.exited:
		if err != nil {
			m.t.Errorf("s3drive exited with %v after %s:\n%s", err, how, m.stderr.String())
		}
	case <-time.After(60 * time.Second):
		m.cmd.Process.Kill()
		unix.Unmount(m.dir, unix.MNT_DETACH)
		m.t.Errorf("s3drive did not exit after %s:\n%s", how, m.stderr.String())
	}
	m.cmd = nil
	if mounted, _ := isMounted(m.dir); mounted {
		m.t.Errorf("%s still mounted after %s", m.dir, how)
	}
}

// terminate sends SIGTERM, as a service manager would, and waits for
// s3drive to flush, unmount and exit.
func (m *mount) terminate() {
	m.t.Helper()
	m.cmd.Process.Signal(syscall.SIGTERM)
	m.waitExit("SIGTERM")
}

// isMounted reads /proc/self/mountinfo.
func isMounted(dir string) (bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true, nil
		}
	}
	return false, nil
}

func (m *mount) path(p string) string { return filepath.Join(m.dir, p) }

// counters reads the mount's S3 request counters.
func (m *mount) counters() map[string]int64 {
	m.t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Getxattr(m.dir, "user.s3drive.stats", buf)
	if err != nil {
		m.t.Fatalf("reading request counters: %v", err)
	}
	c := map[string]int64{}
	if err := json.Unmarshal(buf[:n], &c); err != nil {
		m.t.Fatal(err)
	}
	return c
}

// requests runs fn and returns the S3 requests it cost, by operation.
func (m *mount) requests(fn func()) map[string]int64 {
	m.t.Helper()
	before := m.counters()
	fn()
	after := m.counters()
	delta := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			delta[k] = d
		}
	}
	return delta
}

// run runs a program and fails the test with its output if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// listKeys returns every key under the client folder, relative to it.
func listKeys(t *testing.T, under string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(env.s3, &s3.ListObjectsV2Input{
		Bucket: aws.String(bucket), Prefix: aws.String(clientDir + "/" + under)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, strings.TrimPrefix(aws.ToString(o.Key), clientDir+"/"))
		}
	}
	return keys
}

func head(t *testing.T, key string) *s3.HeadObjectOutput {
	t.Helper()
	out, err := env.s3.HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(clientDir + "/" + key)})
	if err != nil {
		t.Fatalf("HEAD %s: %v", key, err)
	}
	return out
}

func putObject(t *testing.T, key, body string, meta map[string]string) {
	t.Helper()
	if _, err := env.s3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(clientDir + "/" + key),
		Body: strings.NewReader(body), Metadata: meta}); err != nil {
		t.Fatalf("PUT %s: %v", key, err)
	}
}

func getObject(t *testing.T, key string) string {
	t.Helper()
	out, err := env.s3.GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(clientDir + "/" + key)})
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
