package s3backend

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// backends returns every Backend implementation, each over an empty store,
// so one contract is checked against all of them.
func backends(t *testing.T) map[string]Backend {
	t.Helper()
	mem := NewMemory()
	mem.PageSize = 2

	fake := s3mem.New()
	if err := fake.CreateBucket("bucket"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(fake).Server())
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	s3b, err := New(context.Background(), Config{Bucket: "bucket", Prefix: "clients/acme", Endpoint: srv.URL,
		PartSize: 5 << 20, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	// A neighbour's folder, which the prefixed backend must never see.
	other, err := New(context.Background(), Config{Bucket: "bucket", Prefix: "clients/other", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Upload(context.Background(), "secret", bytes.NewReader([]byte("x")), 1, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	return map[string]Backend{"memory": mem, "s3": s3b}
}

func TestBackendContract(t *testing.T) {
	for name, be := range backends(t) {
		// gofakes3 deviates from S3 in four ways the real server does not
		// (versitygw covers those in the integration tests): it lists a
		// "dir/" marker as an object, ignores If-Match, merges metadata on
		// a REPLACE copy, and does not decode an escaped copy source.
		t.Run(name, func(t *testing.T) { contract(t, be, name == "s3") })
	}
}

// listAll pages through a listing.
func listAll(t *testing.T, be Backend, prefix, delim string) (objs, prefixes []string) {
	t.Helper()
	token := ""
	for {
		page, err := be.List(context.Background(), prefix, delim, token, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			objs = append(objs, o.Key)
		}
		for _, p := range page.Prefixes {
			// gofakes3 repeats a prefix across pages; S3 does not, and the
			// filesystem tolerates both.
			if len(prefixes) == 0 || prefixes[len(prefixes)-1] != p {
				prefixes = append(prefixes, p)
			}
		}
		if token = page.NextToken; token == "" {
			return objs, prefixes
		}
	}
}

func contract(t *testing.T, be Backend, fake bool) {
	ctx := context.Background()
	put := func(key, body string, md map[string]string) ObjectInfo {
		t.Helper()
		info, err := be.Upload(ctx, key, bytes.NewReader([]byte(body)), int64(len(body)), PutOptions{ContentType: "text/plain", Metadata: md})
		if err != nil {
			t.Fatalf("Upload %q: %v", key, err)
		}
		return info
	}
	info := put("dir/a.txt", "hello", map[string]string{"mtime": "1600000000", "mode": "33188"})
	if info.ETag == "" || info.Size != 5 {
		t.Errorf("Upload returned %+v", info)
	}
	put("dir/b.txt", "b", nil)
	put("dir/sub/c.txt", "c", nil)
	put("dir/sub2/", "", nil)
	put("top.txt", "t", nil)
	// Names that cannot be files still round-trip as keys.
	put("odd//double", "1", nil)
	put("odd/with space+plus%?", "2", nil)

	h, err := be.Head(ctx, "dir/a.txt")
	if err != nil || h.Size != 5 || h.Metadata["mtime"] != "1600000000" || h.Metadata["mode"] != "33188" || h.ETag != info.ETag {
		t.Errorf("Head = %+v, %v", h, err)
	}
	if _, err := be.Head(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Head of a missing key: %v, want ErrNotFound", err)
	}

	// Delimiter listing, paged.
	objs, prefixes := listAll(t, be, "dir/", "/")
	if !fake && (fmt.Sprint(objs) != "[dir/a.txt dir/b.txt]" || fmt.Sprint(prefixes) != "[dir/sub/ dir/sub2/]") {
		t.Errorf("List dir/ = %v %v", objs, prefixes)
	}
	objs, prefixes = listAll(t, be, "", "/")
	if fmt.Sprint(prefixes) != "[dir/ odd/]" || fmt.Sprint(objs) != "[top.txt]" {
		t.Errorf("List root = %v %v (a neighbour's folder must not show)", objs, prefixes)
	}
	objs, _ = listAll(t, be, "odd/", "")
	if len(objs) != 2 || objs[0] != "odd//double" {
		t.Errorf("hostile keys did not round-trip: %v", objs)
	}

	// Ranged reads, and If-Match.
	rc, err := be.Get(ctx, "dir/a.txt", 1, 3, info.ETag)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "ell" {
		t.Errorf("Get range = %q", b)
	}
	rc.Close()
	if _, err := be.Get(ctx, "dir/a.txt", 0, -1, "0123456789abcdef0123456789abcdef"); !fake && !errors.Is(err, ErrPrecondition) {
		t.Errorf("Get with a stale ETag: %v, want ErrPrecondition", err)
	}

	// Copy keeps metadata; Copy with options replaces it.
	if _, err := be.Copy(ctx, "dir/a.txt", "copy.txt", 5, nil, Conditions{}); err != nil {
		t.Fatal(err)
	}
	if h, _ := be.Head(ctx, "copy.txt"); h.Metadata["mtime"] != "1600000000" {
		t.Errorf("Copy lost metadata: %v", h.Metadata)
	}
	if _, err := be.Copy(ctx, "copy.txt", "copy.txt", 5, &PutOptions{ContentType: "text/plain", Metadata: map[string]string{"mode": "33152"}}, Conditions{}); err != nil {
		t.Fatal(err)
	}
	if h, _ := be.Head(ctx, "copy.txt"); h.Metadata["mode"] != "33152" || (!fake && h.Metadata["mtime"] != "") {
		t.Errorf("Copy with REPLACE: %v", h.Metadata)
	}
	if _, err := be.Copy(ctx, "odd/with space+plus%?", "odd/copied", 1, nil, Conditions{}); err != nil && !fake {
		t.Errorf("Copy of a key needing escapes: %v", err)
	}

	// Multipart above the part size.
	big := make([]byte, 11<<20+7)
	rand.Read(big)
	up, err := be.Upload(ctx, "big.bin", bytes.NewReader(big), int64(len(big)), PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rc, err = be.Get(ctx, "big.bin", 0, -1, up.ETag)
	if err != nil {
		t.Fatal(err)
	}
	back, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(back, big) {
		t.Errorf("multipart round trip: %d bytes back, want %d equal", len(back), len(big))
	}

	// Batch delete; deleting a missing key is fine.
	if err := be.Delete(ctx, "dir/a.txt", "dir/b.txt", "never-existed"); err != nil {
		t.Fatal(err)
	}
	if err := be.Delete(ctx, "never-existed"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if _, err := be.Head(ctx, "dir/b.txt"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted key still there: %v", err)
	}
	url, err := be.Presign(ctx, "top.txt", Link{TTL: time.Minute})
	if err != nil || url == "" {
		t.Errorf("Presign = %q, %v", url, err)
	}
	c := be.Counters()
	if c[OpHead] == 0 || c[OpList] == 0 || c[OpGet] == 0 || c[OpCopy] == 0 {
		t.Errorf("counters not kept: %v", c)
	}
}

func TestPartSizeFor(t *testing.T) {
	const mib = 1 << 20
	if got := PartSizeFor(100*mib, 16*mib); got != 16*mib {
		t.Errorf("100 MiB: %d", got)
	}
	huge := int64(5) << 40 // 5 TiB, S3's object limit
	p := PartSizeFor(huge, 16*mib)
	if (huge+p-1)/p > maxParts || p%mib != 0 {
		t.Errorf("5 TiB: part size %d gives %d parts", p, (huge+p-1)/p)
	}
}

// TestStreamedMultipart: parts sent out of order, as concurrent uploads
// finish, assemble in part-number order.
func TestStreamedMultipart(t *testing.T) {
	for name, be := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			u, err := be.StartMultipart(ctx, "stream.bin", PutOptions{ContentType: "application/octet-stream",
				Metadata: map[string]string{"mode": "33188"}})
			if err != nil {
				t.Fatal(err)
			}
			ps := be.PartSize()
			data := make([]byte, 2*ps+12345)
			rand.Read(data)
			r := bytes.NewReader(data)
			for _, num := range []int32{3, 1, 2} {
				off := int64(num-1) * ps
				if err := u.Part(ctx, num, r, off, min(ps, int64(len(data))-off)); err != nil {
					t.Fatal(err)
				}
			}
			info, err := u.Complete(ctx, Conditions{})
			if err != nil || info.Size != int64(len(data)) || info.ETag == "" {
				t.Fatalf("complete: %+v, %v", info, err)
			}
			rc, err := be.Get(ctx, "stream.bin", 0, -1, "")
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, data) {
				t.Errorf("assembled object differs (%d bytes, want %d)", len(got), len(data))
			}
			if h, _ := be.Head(ctx, "stream.bin"); h.Metadata["mode"] != "33188" {
				t.Errorf("metadata given at start: %v", h.Metadata)
			}
		})
	}
}

// TestLoopbackHTTP: only plain HTTP to this machine skips the body hash.
func TestLoopbackHTTP(t *testing.T) {
	for endpoint, want := range map[string]bool{
		"http://127.0.0.1:7070":      true,
		"http://localhost:9000":      true,
		"http://[::1]:9000":          true,
		"https://127.0.0.1:7070":     false, // the SDK skips it on TLS anyway
		"http://10.0.0.5:9000":       false,
		"http://minio.internal:9000": false,
		"":                           false, // AWS
	} {
		if got := loopbackHTTP(endpoint); got != want {
			t.Errorf("loopbackHTTP(%q) = %v, want %v", endpoint, got, want)
		}
	}
}
