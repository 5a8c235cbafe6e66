package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"
)

// These tests put a fault proxy between the mount and versitygw and make
// the server go away, fall silent, throttle and cut connections, and kill
// the daemon with SIGKILL, as a crash or the OOM killer would.

// recovered is how long the tests give data to reach S3 once the server
// is back or the drive remounted, as issue 11 promises.
const recovered = 20 * time.Second

// hung bounds a call the mount must end by itself; beyond it the test
// reports a hang rather than waiting for ever.
const hung = 90 * time.Second

// kill9 kills the daemon with SIGKILL and detaches its dead mount.
func (m *mount) kill9() {
	m.t.Helper()
	m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
	if err := unix.Unmount(m.dir, unix.MNT_DETACH); err != nil {
		m.t.Fatalf("detaching the killed mount: %v", err)
	}
}

// peakRSS is the daemon's peak resident memory so far, in MiB.
func (m *mount) peakRSS() int64 {
	m.t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		m.t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb >> 10
		}
	}
	m.t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// checkMemory fails the test if the daemon's peak memory passed 300 MiB
// (not under S3DRIVE_RACE: the race detector multiplies memory).
func (m *mount) checkMemory() {
	m.t.Helper()
	peak := m.peakRSS()
	if peak >= 300 && os.Getenv("S3DRIVE_RACE") != "1" {
		m.t.Errorf("daemon peak RSS %d MiB, want < 300", peak)
	}
	m.t.Logf("daemon peak RSS %d MiB", peak)
}

// runBounded runs a program that must end by itself, and returns its
// combined output and error.
func runBounded(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hung)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %s hung (killed after %s)", name, strings.Join(args, " "), hung)
	}
	return string(out), err
}

// inS3 reports whether key holds want.
func inS3(key string, want []byte) bool {
	out, err := env.s3.GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(clientDir + "/" + key)})
	if err != nil {
		return false
	}
	defer out.Body.Close()
	var got bytes.Buffer
	got.ReadFrom(out.Body)
	return bytes.Equal(got.Bytes(), want)
}

// objectExists reports whether S3 holds key (in the client's folder).
func objectExists(key string) bool {
	_, err := env.s3.HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(clientDir + "/" + key)})
	return err == nil
}

func openUploads(t *testing.T) []string {
	t.Helper()
	out, err := env.s3.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(bucket), Prefix: aws.String(clientDir + "/")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeLocal(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "src.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOutage: while the server is down, folders listed before still list
// and a file whole in the data cache still reads; a close fails with EIO,
// and once the server is back its data reaches S3 without an unmount.
func TestOutage(t *testing.T) {
	need(t)
	freshClient(t)
	proxy := startFaultProxy(t, env.endpoint, 11)
	m := startMountVia(t, proxy.URL, "", "--timeout", "5s", "--metadata-ttl", "0")
	cached := randomBytes(1, 2<<20)
	src := writeLocal(t, cached)
	os.Mkdir(m.path("docs"), 0o755)
	run(t, "cp", src, m.path("docs/cached.bin")) // kept in the data cache
	run(t, "ls", "-l", m.path("docs"))

	proxy.setMode("refuse")
	out, err := runBounded(t, "ls", "-l", m.path("docs"))
	if err != nil || !strings.Contains(out, "cached.bin") {
		t.Errorf("ls of a folder listed before, offline: %v\n%s", err, out)
	}
	if out, err := runBounded(t, "cmp", src, m.path("docs/cached.bin")); err != nil {
		t.Errorf("cmp of a cached file, offline: %v\n%s", err, out)
	}
	lost := []byte("written during the outage\n")
	out, err = runBounded(t, "cp", writeLocal(t, lost), m.path("docs/new.txt"))
	if err == nil || !strings.Contains(out, "Input/output error") {
		t.Errorf("cp during the outage: %v, want EIO at close\n%s", err, out)
	}

	proxy.setMode("pass")
	if !waitFor(t, recovered, func() bool { return inS3("docs/new.txt", lost) }) {
		t.Errorf("docs/new.txt not in S3 %s after the server came back:\n%s", recovered, m.stderr.String())
	}
	for _, want := range []string{"S3 endpoint not answering", "S3 endpoint answers again"} {
		// The upload that lands may be the request that finds the server
		// back, so its line can follow the object into S3.
		m.stderr.has(t, want)
		if n := strings.Count(m.stderr.String(), want); n != 1 {
			t.Errorf("log has %q %d times, want once per outage", want, n)
		}
	}
	m.checkMemory()
}

// TestKilledAfterFailedUpload: data whose close failed survives SIGKILL
// and is uploaded, byte for byte, by the next mount of the cache dir.
func TestKilledAfterFailedUpload(t *testing.T) {
	need(t)
	freshClient(t)
	proxy := startFaultProxy(t, env.endpoint, 12)
	cacheDir := t.TempDir()
	m := startMountVia(t, proxy.URL, cacheDir, "--timeout", "5s")
	run(t, "ls", m.dir)
	data := randomBytes(2, 3<<20+17)
	proxy.setMode("refuse")
	if out, err := runBounded(t, "cp", writeLocal(t, data), m.path("report.pdf")); err == nil {
		t.Fatalf("cp with the server down succeeded:\n%s", out)
	}
	m.kill9()
	proxy.setMode("pass")

	// Mounted through another endpoint (straight to the server), the data
	// is not that mount's to upload: it says where it is.
	direct := startMount(t, cacheDir)
	if !direct.stderr.has(t, "mount that source again with the same --endpoint") ||
		!strings.Contains(direct.stderr.String(), proxy.URL) {
		t.Errorf("a mount through another endpoint does not point at the pending data:\n%s", direct.stderr.String())
	}
	direct.unmount()

	m = startMountVia(t, proxy.URL, cacheDir)
	if !waitFor(t, recovered, func() bool { return inS3("report.pdf", data) }) {
		t.Fatalf("report.pdf not in S3 %s after remount:\n%s", recovered, m.stderr.String())
	}
	if !m.stderr.has(t, "recovery: uploaded data a previous run could not") {
		t.Errorf("recovery not logged:\n%s", m.stderr.String())
	}
	if out := run(t, "cmp", writeLocal(t, data), m.path("report.pdf")); out != "" {
		t.Error(out)
	}
}

// TestRecoveryKeepsNewerVersion: the object changed in S3 while the data
// waited; recovery puts the data beside it, never over it.
func TestRecoveryKeepsNewerVersion(t *testing.T) {
	need(t)
	freshClient(t)
	putObject(t, "budget.xlsx", "version 1", nil)
	proxy := startFaultProxy(t, env.endpoint, 13)
	cacheDir := t.TempDir()
	m := startMountVia(t, proxy.URL, cacheDir, "--timeout", "5s")
	if got := run(t, "cat", m.path("budget.xlsx")); got != "version 1" {
		t.Fatalf("read %q", got)
	}
	mine := []byte("my edit of version 1")
	proxy.setMode("refuse")
	if out, err := runBounded(t, "cp", writeLocal(t, mine), m.path("budget.xlsx")); err == nil {
		t.Fatalf("cp with the server down succeeded:\n%s", out)
	}
	m.kill9()
	proxy.setMode("pass")
	putObject(t, "budget.xlsx", "version 2, by a colleague", nil)

	m = startMountVia(t, proxy.URL, cacheDir)
	var conflicted string
	waitFor(t, recovered, func() bool {
		for _, k := range listKeys(t, "") {
			if strings.HasPrefix(k, "budget (conflicted copy ") && strings.HasSuffix(k, ").xlsx") {
				conflicted = k
			}
		}
		return conflicted != ""
	})
	if conflicted == "" {
		t.Fatalf("no conflicted copy in %v:\n%s", listKeys(t, ""), m.stderr.String())
	}
	if got := getObject(t, "budget.xlsx"); got != "version 2, by a colleague" {
		t.Errorf("budget.xlsx holds %q: the colleague's version was overwritten", got)
	}
	if got := getObject(t, conflicted); got != string(mine) {
		t.Errorf("%s holds %q", conflicted, got)
	}
}

// TestKilledDuringLargeCopy: SIGKILL while a 200 MiB copy streams up. The
// next mount aborts the multipart upload, uploads nothing half-written,
// and keeps the partial data in lost+found, saying so.
func TestKilledDuringLargeCopy(t *testing.T) {
	need(t)
	freshClient(t)
	cacheDir := t.TempDir()
	m := startMount(t, cacheDir)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	dd := exec.Command("dd", "if="+fifo, "of="+m.path("big.bin"), "bs=1M", "iflag=fullblock")
	if err := dd.Start(); err != nil {
		t.Fatal(err)
	}
	feed, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	chunk := randomBytes(3, 1<<20)
	for range 48 { // of 200 MiB: three parts' worth, then the kill
		if _, err := feed.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if !waitFor(t, recovered, func() bool { return len(openUploads(t)) > 0 }) {
		t.Fatal("no multipart upload started after 48 MiB")
	}
	m.kill9()
	feed.Close()
	dd.Wait()

	m = startMount(t, cacheDir)
	if _, err := env.s3.HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(clientDir + "/big.bin")}); err == nil {
		t.Errorf("big.bin exists in S3 after a copy killed half way:\n%s", m.stderr.String())
	}
	if ups := openUploads(t); len(ups) > 0 {
		t.Errorf("multipart uploads left open after remount: %v", ups)
	}
	if !m.stderr.has(t, "aborted a multipart upload a previous run left open") ||
		!m.stderr.has(t, "never closed") {
		t.Errorf("recovery not reported:\n%s", m.stderr.String())
	}
	kept, _ := filepath.Glob(filepath.Join(cacheDir, "*", "lost+found", "*big.bin"))
	if len(kept) != 1 {
		t.Errorf("partial data not kept in lost+found: %v", kept)
	}
}

// TestUnmountReportsDataLeft: s3drive unmount exits 3, naming the file,
// when the daemon could not upload everything.
func TestUnmountReportsDataLeft(t *testing.T) {
	need(t)
	freshClient(t)
	proxy := startFaultProxy(t, env.endpoint, 14)
	m := startMountVia(t, proxy.URL, "", "--timeout", "2s")
	run(t, "ls", m.dir)
	proxy.setMode("refuse")
	runBounded(t, "cp", writeLocal(t, []byte("unsent")), m.path("unsent.txt"))
	out, err := runBounded(t, env.binary, "unmount", m.dir)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(out, "unsent.txt") {
		t.Errorf("s3drive unmount with data left: %v, want exit status 3 naming unsent.txt\n%s", err, out)
	}
	select {
	case err := <-m.exited:
		if !errors.As(err, &exit) || exit.ExitCode() != 3 {
			t.Errorf("daemon exit: %v, want status 3", err)
		}
	case <-time.After(hung):
		t.Fatal("daemon did not exit after unmount")
	}
	m.cmd = nil
}

// TestSilentServer: a server that accepts connections and never answers.
// Calls end with an error within the timeout instead of hanging, and so
// does a mount against it, with one clear line.
func TestSilentServer(t *testing.T) {
	need(t)
	freshClient(t)
	proxy := startFaultProxy(t, env.endpoint, 15)
	m := startMountVia(t, proxy.URL, "", "--timeout", "3s", "--metadata-ttl", "0")
	proxy.setMode("hang")
	// cp reports a failed close (a shell's redirection does not): the
	// name may be known free from the listing taken at mount, but the
	// upload at close cannot be.
	if out, err := runBounded(t, "cp", writeLocal(t, []byte("x")), m.path("new.txt")); err == nil {
		t.Errorf("create+close against a silent server succeeded:\n%s", out)
	}
	if _, err := runBounded(t, "stat", m.path("never-seen/x")); err == nil {
		t.Error("lookup of a new name against a silent server succeeded")
	}
	mountEnv := m.cmd.Env
	// SIGTERM: if the create got through (the name known free from a
	// listing), its data cannot be uploaded either: the drive exits 3
	// naming it, and keeps it for the next mount. Else it exits cleanly.
	m.cmd.Process.Signal(unix.SIGTERM)
	var exit *exec.ExitError
	select {
	case err := <-m.exited:
		if err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(m.stderr.String(), "new.txt")) {
			t.Errorf("exit after SIGTERM: %v, want a clean exit, or status 3 naming new.txt:\n%s", err, m.stderr.String())
		}
	case <-time.After(hung):
		t.Fatal("s3drive did not exit after SIGTERM")
	}
	m.cmd = nil
	proxy.setMode("pass")
	proxy.setMode("hang")

	ctx, cancel := context.WithTimeout(context.Background(), hung)
	defer cancel()
	mount := exec.CommandContext(ctx, env.binary, "mount", "--endpoint", proxy.URL, "--timeout", "2s",
		"--cache-dir", t.TempDir(), "s3://"+bucket+"/"+clientDir, t.TempDir())
	mount.Env = mountEnv
	outb, err := mount.CombinedOutput()
	out := string(outb)
	if err == nil || !strings.Contains(out, "did not answer within --timeout") || strings.Count(strings.TrimSpace(out), "\n") > 0 {
		t.Errorf("mount against a silent server: %v, want one clear line\n%s", err, out)
	}
}

// TestFaultyNetwork: GET bodies cut part way and connections reset are
// retried (a read resumes from the byte reached), and a server throttling
// 30% of requests slows a copy down without failing it.
func TestFaultyNetwork(t *testing.T) {
	need(t)
	freshClient(t)
	big := randomBytes(4, 200<<20)
	src := writeLocal(t, big)
	if _, err := env.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket),
		Key: aws.String(clientDir + "/big.bin"), Body: bytes.NewReader(big)}); err != nil {
		t.Fatal(err)
	}
	proxy := startFaultProxy(t, env.endpoint, 16)
	m := startMountVia(t, proxy.URL, "")
	proxy.setFaults(0, 0.1, 0.3, 0)
	if out, err := runBounded(t, "cmp", src, m.path("big.bin")); err != nil {
		t.Errorf("200 MiB read through resets: %v\n%s", err, out)
	}
	if proxy.cuts() == 0 || !m.stderr.has(t, "GET interrupted; resuming") {
		t.Errorf("%d GET bodies cut, none resumed: the test tested nothing\n%s", proxy.cuts(), m.stderr.String())
	}

	proxy.setFaults(0.3, 0, 0, 0)
	tree := filepath.Join(runtime.GOROOT(), "src", "crypto", "internal", "fips140")
	if out, err := runBounded(t, "cp", "-r", tree, m.path("fips140")); err != nil {
		t.Errorf("cp -r under 30%% SlowDown: %v\n%s", err, out)
	}
	proxy.setFaults(0, 0, 0, 0)
	if out, err := runBounded(t, "diff", "-r", tree, m.path("fips140")); err != nil {
		t.Errorf("tree after cp -r under throttling: %v\n%s", err, out)
	}
	if slow, _, _ := proxy.counts(); slow < 100 {
		t.Errorf("only %d SlowDown answers: the test tested little", slow)
	}
	m.checkMemory()
}

// TestSmallCacheDisk: a cache dir on a 64 MiB tmpfs. The data cache makes
// way for staged writes, and a 200 MiB write-only copy frees the parts S3
// has confirmed as it goes.
//
// With --write-back, closed files wait on that disk for their uploads: a
// close finds the disk low and waits for its own upload instead of letting
// the copies fill it, and the 200 MiB copy, whose start was freed from the
// disk, is in S3 when dd returns.
func TestSmallCacheDisk(t *testing.T) {
	need(t)
	for _, flags := range [][]string{nil, {"--write-back"}} {
		t.Run(fmt.Sprintf("%v", flags), func(t *testing.T) { smallCacheDisk(t, flags) })
	}
}

func smallCacheDisk(t *testing.T, flags []string) {
	freshClient(t)
	cacheDir := t.TempDir()
	if err := unix.Mount("tmpfs", cacheDir, "tmpfs", 0, "size=64m"); err != nil {
		t.Fatalf("mounting a 64 MiB tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(cacheDir, unix.MNT_DETACH) })
	m := startMount(t, cacheDir, flags...)
	writeBack := len(flags) > 0
	for i := range 30 {
		data := randomBytes(uint64(100+i), 3_000_000)
		name := fmt.Sprintf("copy%02d.bin", i)
		if out, err := runBounded(t, "cp", writeLocal(t, data), m.path(name)); err != nil {
			t.Fatalf("copy %d of 30: %v\n%s", i+1, err, out)
		}
		if !writeBack && !inS3(name, data) {
			t.Fatalf("%s not whole in S3", name)
		}
	}
	if writeBack {
		for i := range 30 {
			name := fmt.Sprintf("copy%02d.bin", i)
			if !waitFor(t, recovered, func() bool { return inS3(name, randomBytes(uint64(100+i), 3_000_000)) }) {
				t.Fatalf("%s not whole in S3 %s after the copies", name, recovered)
			}
		}
	}
	big := randomBytes(5, 200<<20)
	src := writeLocal(t, big)
	if out, err := runBounded(t, "dd", "if="+src, "of="+m.path("big.bin"), "bs=1M"); err != nil {
		t.Fatalf("200 MiB dd onto a 64 MiB cache disk: %v\n%s\n%s", err, out, m.stderr.String())
	}
	if !inS3("big.bin", big) {
		t.Error("big.bin not whole in S3")
	}
	for i := range 30 { // read back through the full disk
		data := randomBytes(uint64(100+i), 3_000_000)
		if out, err := runBounded(t, "cmp", writeLocal(t, data), m.path(fmt.Sprintf("copy%02d.bin", i))); err != nil {
			t.Errorf("reading copy %d back: %v\n%s", i, err, out)
		}
	}
	if out, err := runBounded(t, "cmp", src, m.path("big.bin")); err != nil {
		t.Errorf("reading big.bin back: %v\n%s", err, out)
	}
	if !m.stderr.has(t, "cache disk full: freeing the parts of a file already uploaded") {
		t.Errorf("the copy never ran out of disk: the test tested nothing\n%s", m.stderr.String())
	}
	m.checkMemory()
}
