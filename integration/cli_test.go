package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3drive/s3drive/integration/s3server"
)

// TestVersionAndUsageExits: --version answers and exits 0; a word that is
// no command, like a bad flag, is a usage error (exit 2) that names it.
func TestVersionAndUsageExits(t *testing.T) {
	need(t)
	out, err := exec.Command(env.binary, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "s3drive ") || !strings.Contains(string(out), "go1.") {
		t.Errorf("s3drive --version: %v, %q; want exit 0 and a version line", err, out)
	}
	for _, args := range [][]string{{"nosuchcommand"}, {"mount", "--bogus"}, {"mount"}} {
		out, err := exec.Command(env.binary, args...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("s3drive %v: %v, want exit status 2\n%s", args, err, out)
		}
	}
	if out, _ := exec.Command(env.binary, "nosuchcommand").CombinedOutput(); !strings.Contains(string(out), `"nosuchcommand"`) {
		t.Errorf("the usage error does not name the word: %q", out)
	}
}

// TestJSONLogFile: --log-format json --log-file writes one JSON object a
// line to the file, the mount's own lines (its unmount) among them; a
// format it does not know is a usage error.
func TestJSONLogFile(t *testing.T) {
	need(t)
	freshClient(t)
	logPath := filepath.Join(t.TempDir(), "s3drive.log")
	m := startMount(t, "", "--log-format", "json", "--log-file", logPath)
	m.unmount()
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	sawUnmount := false
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
			t.Errorf("not a JSON log line: %q (%v)", line, err)
		}
		sawUnmount = sawUnmount || rec["msg"] == "unmounted"
	}
	if !sawUnmount {
		t.Errorf("no \"unmounted\" line in the log file:\n%s", data)
	}
	out, err := exec.Command(env.binary, "mount", "--log-format", "xml", "s3://"+bucket, t.TempDir()).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "--log-format") {
		t.Errorf("--log-format xml: %v, %q; want exit 2 naming the flag", err, out)
	}
}

// TestSystemdNotify: started by systemd as a Type=notify service (a
// NOTIFY_SOCKET in its environment), the mount says READY=1 once it serves,
// with a status line, and STOPPING=1 when it unmounts.
func TestSystemdNotify(t *testing.T) {
	need(t)
	freshClient(t)
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	messages := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(messages)
				return
			}
			messages <- string(buf[:n])
		}
	}()
	t.Setenv("NOTIFY_SOCKET", sock)
	m := startMount(t, "")
	expect := func(state string) {
		t.Helper()
		deadline := time.After(30 * time.Second) // a bound on a failure
		for {
			select {
			case msg, ok := <-messages:
				if !ok {
					t.Fatalf("notify socket closed before %s", state)
				}
				if strings.Contains(msg, state) {
					if !strings.Contains(msg, "STATUS=") {
						t.Errorf("%q carries no status line", msg)
					}
					return
				}
			case <-deadline:
				t.Fatalf("no %s on the notify socket", state)
			}
		}
	}
	expect("READY=1")
	m.unmount()
	expect("STOPPING=1")
}

// TestMetrics: --metrics-addr serves Prometheus metrics: S3 requests by
// operation, files waiting to be uploaded, Go's runtime; a busy address
// stops the mount with a message naming the flag.
func TestMetrics(t *testing.T) {
	need(t)
	freshClient(t)
	addr, err := s3server.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	m := startMount(t, "", "--metrics-addr", addr)
	run(t, "ls", m.dir)
	payload := strings.Repeat("metrics ", 1000)
	if err := os.WriteFile(m.path("counted.txt"), []byte(payload), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v", resp.Status, err)
	}
	for _, want := range []string{
		`s3drive_s3_requests_total{operation="ListObjectsV2",outcome="ok"} `,
		// The probe for conditional writes at mount: a PUT taken and
		// one refused (versitygw honours PutObject's conditions), then
		// the file's PUT.
		`s3drive_s3_requests_total{operation="PutObject",outcome="ok"} 2` + "\n",
		`s3drive_s3_requests_total{operation="PutObject",outcome="precondition_failed"} 1` + "\n",
		`s3drive_s3_request_duration_seconds_count{operation="PutObject"} 3` + "\n",
		`s3drive_s3_request_duration_seconds_bucket{operation="PutObject",le="+Inf"} 3` + "\n",
		"s3drive_conflicts_total 0\n",
		`s3drive_fuse_operations_total{operation="create"} 1` + "\n",
		`s3drive_fuse_operations_total{operation="write"} `,
		`s3drive_cache_hits_total{cache="metadata"} `,
		`s3drive_cache_misses_total{cache="data"} `,
		"s3drive_pending_uploads 0\n", "s3drive_pending_upload_bytes 0\n", "s3drive_upload_retries_total 0\n",
		"go_goroutines ", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Every byte of the upload is counted (headers and listings aside).
	var sent float64
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "s3drive_s3_sent_bytes_total "); ok {
			fmt.Sscan(v, &sent)
		}
	}
	if sent < float64(len(payload)) {
		t.Errorf("s3drive_s3_sent_bytes_total %v, want at least the %d bytes uploaded", sent, len(payload))
	}
	// The address is taken now: a second mount refuses to start.
	second := exec.Command(env.binary, "mount", "--endpoint", env.endpoint, "--cache-dir", t.TempDir(), "--metrics-addr", addr, "s3://"+bucket, t.TempDir())
	second.Env = mountEnv()
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--metrics-addr") {
		t.Errorf("a second mount on a busy --metrics-addr: %v, %q; want a failure naming the flag", err, out)
	}
}

// TestPlainErrors: an https:// endpoint that speaks http, and a bucket name
// the server refuses, each get one plain line saying what to do, at once.
func TestPlainErrors(t *testing.T) {
	need(t)
	for _, c := range []struct {
		endpoint, source, want string
	}{
		{strings.Replace(env.endpoint, "http://", "https://", 1), "s3://" + bucket, "answers plain HTTP, not HTTPS: use --endpoint " + env.endpoint},
		{env.endpoint, "s3://Bad_Bucket", `refuses "Bad_Bucket" as a bucket name`},
	} {
		cmd := exec.Command(env.binary, "mount", "--endpoint", c.endpoint, "--cache-dir", t.TempDir(), c.source, t.TempDir())
		cmd.Env = mountEnv()
		out, err := cmd.CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err == nil || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "operation error") || len(lines) != 1 {
			t.Errorf("mount %s via %s: %v\n%s\nwant one line containing %q", c.source, c.endpoint, err, out, c.want)
		}
	}
}

// TestHTTPToTLSEndpoint: an http:// endpoint that speaks TLS (the server
// only resets plain connections) gets one line saying to use https://.
func TestHTTPToTLSEndpoint(t *testing.T) {
	need(t)
	root := t.TempDir()
	cert, key := selfSignedCert(t, root)
	srv, err := s3server.Start(env.vgw, filepath.Join(root, "s3"), "--cert", cert, "--key", key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	cmd := exec.Command(env.binary, "mount", "--endpoint", srv.Endpoint, "--cache-dir", t.TempDir(), "s3://"+bucket, t.TempDir())
	cmd.Env = mountEnv()
	out, err := cmd.CombinedOutput()
	want := "speaks HTTPS, not plain HTTP: use --endpoint " + strings.Replace(srv.Endpoint, "http://", "https://", 1)
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); err == nil || len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("mount via %s (TLS): %v\n%s\nwant one line containing %q", srv.Endpoint, err, out, want)
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key under dir.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
