package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/s3drive/s3drive/s3backend"
)

// TestReaderCloseDuringStreamedWrite: a file manager sniffing a file being
// copied (head -c 16, an open for writing that writes nothing) must not
// complete its streamed upload half way: S3 holds nothing until the writer
// closes, then the whole file, uploaded once.
func TestReaderCloseDuringStreamedWrite(t *testing.T) {
	need(t)
	freshClient(t)
	m := startMount(t, "")
	p := m.path("video.bin")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	sum := sha256.New()
	write := func(mib int) {
		for range mib {
			if _, err := f.Write(chunk); err != nil {
				t.Fatal(err)
			}
			sum.Write(chunk)
		}
	}
	cost := m.requests(func() {
		write(40)
		if got := run(t, "head", "-c", "16", p); got != string(chunk[:16]) {
			t.Errorf("head -c 16 read %q", got)
		}
		run(t, "sh", "-c", `: <> "$1"`, "sh", p) // opened for writing, nothing written
		if keys := listKeys(t, ""); slices.Contains(keys, "video.bin") {
			t.Fatalf("S3 holds video.bin while its writer is still writing: %v", keys)
		}
		write(8)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	})
	if cost[s3backend.OpCompleteMultipart] != 1 || cost[s3backend.OpUploadPart] > 4 || cost[s3backend.OpPut] != 0 {
		t.Errorf("48 MiB written with a reader's closes in between cost %v: want 1 CompleteMultipartUpload, ≤ 4 UploadPart, no PutObject", cost)
	}
	got := sha256.Sum256([]byte(getObject(t, "video.bin")))
	if !bytes.Equal(got[:], sum.Sum(nil)) {
		t.Error("S3 does not hold the 48 MiB written")
	}
}

// TestRemovedFolderStaysGone: after rm -r, the folder shows in no listing,
// however often the parent is listed afresh before the batched removals
// go. The metadata TTL is short (300 ms), so that rm -r finds its listings
// fresh and queues the removals, and the ls that follow list the parent
// from S3 again while they wait for their batch (1 s).
func TestRemovedFolderStaysGone(t *testing.T) {
	need(t)
	freshClient(t)
	putObject(t, "implicit/f", "x", nil) // a folder with no marker, from another client
	m := startMount(t, "", "--metadata-ttl", "300ms", "--negative-ttl", "1ms")
	if err := os.MkdirAll(m.path("t/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.path("t/f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "sync", m.path("t"), m.path("t/sub")) // the markers go to S3
	if keys := listKeys(t, "t/"); !slices.Contains(keys, "t/") {
		t.Fatalf("t's marker not in S3 after sync: %v", keys)
	}
	run(t, "rm", "-r", m.path("t"), m.path("implicit"))
	if len(listKeys(t, "")) == 0 {
		t.Fatal("rm -r sent its removals at once; the test needs them queued")
	}
	// Until the batch has gone, and a few times after.
	lists, after := 0, 0
	for after < 5 {
		if len(listKeys(t, "")) == 0 {
			after++
		}
		lists++
		if out := run(t, "ls", "-a", m.dir); strings.Contains(out, "t\n") || strings.Contains(out, "implicit") {
			t.Fatalf("ls #%d after rm -r lists a removed folder:\n%s", lists, out)
		}
		for _, name := range []string{"t", "implicit"} {
			if out, err := exec.Command("stat", m.path(name)).CombinedOutput(); err == nil {
				t.Fatalf("stat of removed %s (#%d) succeeds:\n%s", name, lists, out)
			}
		}
	}
	t.Logf("%d rounds of ls and stat", lists)
}

// TestReadAfterUnlink: a descriptor open on a file keeps reading it after
// another program removes it, and after S3 no longer has it.
func TestReadAfterUnlink(t *testing.T) {
	need(t)
	freshClient(t)
	putObject(t, "doc.txt", "what the file held", nil)
	m := startMount(t, "")
	out := run(t, "sh", "-c", `exec 3< "$1"; rm "$1"; sync "$2"; cat <&3`, "sh", m.path("doc.txt"), m.dir)
	if out != "what the file held" {
		t.Errorf("read through a descriptor after unlink: %q", out)
	}
	if keys := listKeys(t, ""); len(keys) != 0 {
		t.Errorf("S3 still holds %v after the removal was synced", keys)
	}
}

// TestNameTooLong: names S3 cannot hold fail at once with ENAMETOOLONG,
// and nothing is left to fail at close or unmount.
func TestNameTooLong(t *testing.T) {
	need(t)
	freshClient(t)
	m := startMount(t, "")
	long := strings.Repeat("n", 256)
	for _, args := range [][]string{{"touch", m.path(long)}, {"mkdir", m.path(long)}} {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "File name too long") {
			t.Errorf("%s of a 256-byte name: %v %s, want ENAMETOOLONG", args[0], err, out)
		}
	}
	// "clients/acme/" plus four 250-byte folders is 1,017 bytes; the fifth
	// folder's marker would pass 1,024.
	deep := m.dir
	for i := range 5 {
		deep = filepath.Join(deep, strings.Repeat(string(rune('a'+i)), 250))
	}
	out, err := exec.Command("mkdir", "-p", deep).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "File name too long") {
		t.Errorf("mkdir -p of a path past 1,024 bytes: %v %s, want ENAMETOOLONG", err, out)
	}
	run(t, "sync", m.dir)
	for _, k := range listKeys(t, "") {
		if len(clientDir)+1+len(k) > 1024 {
			t.Errorf("S3 got a key of %d bytes", len(clientDir)+1+len(k))
		}
	}
	m.unmount() // must exit 0: nothing left that cannot be stored
}

// TestConditionalDeleteOnServer: the server honours If-Match on
// DeleteObject, so a queued removal spares a version written since.
func TestConditionalDeleteOnServer(t *testing.T) {
	need(t)
	freshClient(t)
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	ctx := context.Background()
	be, err := s3backend.New(ctx, s3backend.Config{Bucket: bucket, Prefix: clientDir, Endpoint: env.endpoint, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	old, err := be.Upload(ctx, "x", strings.NewReader("old"), 3, s3backend.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	putObject(t, "x", "newer, from another client", nil)
	kept, err := be.Remove(ctx, []s3backend.Removal{{Key: "x", ETag: old.ETag}})
	if err != nil || !slices.Equal(kept, []string{"x"}) {
		t.Fatalf("removal of a version since replaced: kept %v, %v; want x kept", kept, err)
	}
	if got := getObject(t, "x"); got != "newer, from another client" {
		t.Fatalf("x holds %q", got)
	}
	cur := head(t, "x")
	if kept, err := be.Remove(ctx, []s3backend.Removal{{Key: "x", ETag: strings.Trim(aws.ToString(cur.ETag), `"`)}}); err != nil || len(kept) != 0 {
		t.Fatalf("removal of the current version: kept %v, %v", kept, err)
	}
	if _, err := env.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket),
		Key: aws.String(clientDir + "/x")}); err == nil {
		t.Error("x still there after its current version was removed")
	}
}
