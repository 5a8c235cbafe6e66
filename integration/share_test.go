package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// s3driveCmd runs the s3drive binary with the mounts' environment (the
// control sockets live where their XDG_RUNTIME_DIR says).
func s3driveCmd(args ...string) (string, error) {
	cmd := exec.Command(env.binary, args...)
	cmd.Env = mountEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stderr.String(), err
	}
	return strings.TrimSpace(stdout.String()), nil
}

func httpGet(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestShareLinks: s3drive url prints a link that downloads the file's exact
// bytes under its name until it expires, and is refused after; an upload
// link lets curl -T drop a new file that the mount then shows; the
// user.s3drive.url attribute is a working link; mistakes get a plain line.
func TestShareLinks(t *testing.T) {
	need(t)
	freshClient(t)
	m := startMount(t, "")
	want := []byte("quarterly figures\n")
	if err := os.WriteFile(m.path("Report 2026.pdf"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	url, err := s3driveCmd("url", m.path("Report 2026.pdf"), "--expires", "2s")
	if err != nil {
		t.Fatalf("s3drive url: %v: %s", err, url)
	}
	issued := time.Now()
	resp, body := httpGet(t, url)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("GET link: %s %q, want the file's bytes", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/pdf" {
		t.Errorf("Content-Type %q, want application/pdf", ct)
	}
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err != nil || params["filename"] != "Report 2026.pdf" {
		t.Errorf("Content-Disposition %q: want the file's name", resp.Header.Get("Content-Disposition"))
	}
	// The link's expiry is the thing under test: wait it out.
	time.Sleep(time.Until(issued.Add(3 * time.Second)))
	if resp, _ := httpGet(t, url); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET an expired link: %s, want 403", resp.Status)
	}

	attr := run(t, "getfattr", "--absolute-names", "--only-values", "-n", "user.s3drive.url", m.path("Report 2026.pdf"))
	if resp, body := httpGet(t, attr); resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Errorf("GET the user.s3drive.url link: %s %q", resp.Status, body)
	}
	if out := run(t, "getfattr", "--absolute-names", "-d", m.path("Report 2026.pdf")); strings.Contains(out, "s3drive.url") {
		t.Errorf("the link is listed among the attributes (cp --preserve=xattr would copy it):\n%s", out)
	}

	// An upload link: the name is free, a client drops a file there.
	os.Mkdir(m.path("inbox"), 0o755)
	if _, err := os.Stat(m.path("inbox/scan.jpg")); !os.IsNotExist(err) {
		t.Fatalf("inbox/scan.jpg before the upload: %v", err)
	}
	up, err := s3driveCmd("url", "--upload", m.path("inbox/scan.jpg"), "--expires", "1m")
	if err != nil {
		t.Fatalf("s3drive url --upload: %v: %s", err, up)
	}
	scan := bytes.Repeat([]byte("jpeg"), 5000)
	local := writeLocal(t, scan)
	run(t, "curl", "-sSf", "-T", local, up)
	if got, err := os.ReadFile(m.path("inbox/scan.jpg")); err != nil || !bytes.Equal(got, scan) {
		t.Errorf("the uploaded file in the mount: %v, %d bytes; want %d", err, len(got), len(scan))
	}
	if out := run(t, "ls", m.path("inbox")); !strings.Contains(out, "scan.jpg") {
		t.Errorf("ls of the folder does not show the upload:\n%s", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"url", m.path("inbox")}, "is a folder"},
		{[]string{"url", m.path("missing.txt")}, "no such file"},
		{[]string{"url", t.TempDir()}, "is a folder"},
		{[]string{"url", local}, "not inside a running s3drive mount"},
		{[]string{"url", "--upload", m.path("inbox/scan.jpg")}, "--overwrite"},
		{[]string{"url", "--expires", "200h", m.path("Report 2026.pdf")}, "at most 168h"},
	} {
		out, err := s3driveCmd(c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("s3drive %s: %v, %q; want a failure saying %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}
}

// TestLinkWaitsForTheWriter: a file still being written has no link yet
// (the link would show a state no writer closed); --wait returns once its
// writer closed it and S3 has it.
func TestLinkWaitsForTheWriter(t *testing.T) {
	need(t)
	freshClient(t)
	m := startMount(t, "")
	f, err := os.Create(m.path("draft.txt"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("first half, ")
	if out, err := s3driveCmd("url", m.path("draft.txt")); err == nil || !strings.Contains(out, "--wait") {
		t.Errorf("url of a file being written: %v %q; want a refusal offering --wait", err, out)
	}
	type answer struct {
		url string
		err error
	}
	got := make(chan answer, 1)
	go func() {
		url, err := s3driveCmd("url", "--wait", m.path("draft.txt"))
		got <- answer{url, err}
	}()
	f.WriteString("second half")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.err != nil {
		t.Fatalf("url --wait: %v: %s", a.err, a.url)
	}
	if _, body := httpGet(t, a.url); string(body) != "first half, second half" {
		t.Errorf("the link shows %q, want what the writer closed", body)
	}
}

// TestStatusNamesWaitingUpload: with the server unreachable, a file whose
// upload failed is named by s3drive status, with its error; --json parses.
func TestStatusNamesWaitingUpload(t *testing.T) {
	need(t)
	freshClient(t)
	proxy := startFaultProxy(t, env.endpoint, 13)
	m := startMountVia(t, proxy.URL, "", "--timeout", "3s")
	run(t, "ls", m.dir) // the folder's listing answers the create offline
	proxy.setMode("refuse")
	data := randomBytes(3, 300<<10)
	if out, err := runBounded(t, "cp", writeLocal(t, data), m.path("waiting.bin")); err == nil {
		t.Fatalf("cp with the server down succeeded:\n%s", out)
	}
	out, err := s3driveCmd("status")
	if err != nil || !strings.Contains(out, "waiting.bin") || !strings.Contains(out, "OFFLINE") {
		t.Errorf("s3drive status: %v\n%s\nwant waiting.bin named and the mount offline", err, out)
	}
	js, err := s3driveCmd("status", m.dir, "--json")
	if err != nil {
		t.Fatalf("status --json: %v: %s", err, js)
	}
	var st struct {
		Mountpoint string
		Online     bool
		Uploads    []struct {
			Path      string
			Size      int64
			Retries   int
			LastError string `json:"last_error"`
		}
	}
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatalf("status --json does not parse: %v\n%s", err, js)
	}
	if st.Mountpoint != m.dir || st.Online || len(st.Uploads) != 1 || st.Uploads[0].Path != "waiting.bin" ||
		st.Uploads[0].Size != int64(len(data)) || st.Uploads[0].Retries < 1 || st.Uploads[0].LastError == "" {
		t.Errorf("status --json: %+v", st)
	}
	proxy.setMode("pass")
	if !waitFor(t, recovered, func() bool { return inS3("waiting.bin", data) }) {
		t.Fatal("waiting.bin not uploaded once the server came back")
	}
	if !waitFor(t, recovered, func() bool {
		out, err := s3driveCmd("status", m.dir)
		return err == nil && strings.Contains(out, "uploads waiting: none")
	}) {
		out, _ := s3driveCmd("status", m.dir)
		t.Errorf("status once uploaded:\n%s", out)
	}
	if out, err := s3driveCmd("status", t.TempDir()); err == nil || !strings.Contains(out, "no running s3drive mount") {
		t.Errorf("status of a plain folder: %v %q", err, out)
	}
}
