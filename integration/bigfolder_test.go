package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// fillFolder writes n one-byte objects dir/f000000.txt… as another client
// would, 32 at a time.
func fillFolder(t *testing.T, dir string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	ch := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				if _, err := env.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket),
					Key: aws.String(fmt.Sprintf("%s/%s/f%06d.txt", clientDir, dir, i)), Body: strings.NewReader("x")}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
}

// TestBigFolderWalk: ls -f of a folder of 10,000 objects another client
// wrote costs its listing alone (and its first page once more, which tells
// the folder has no marker); ls -l lists it so and HEADs each object once, however long the walk takes past
// the metadata TTL; again right after, listings only; and creating 200
// files in it lists nothing.
func TestBigFolderWalk(t *testing.T) {
	need(t)
	freshClient(t)
	fillFolder(t, "big", 10_000)
	names := startMount(t, "")
	var listed string
	namesOnly := names.requests(func() { listed = run(t, "ls", "-f", names.path("big")) })
	n := 0
	for _, name := range strings.Fields(listed) {
		if name != "." && name != ".." {
			n++
		}
	}
	if n != 10_000 {
		t.Fatalf("ls -f printed %d names, want 10,000", n)
	}
	// big has no marker: the first page of its listing shows that, at its
	// lookup, in place of a HEAD; then readdir lists its 10 pages.
	if namesOnly["ListObjectsV2"] > 12 || namesOnly["HeadObject"] != 0 {
		t.Errorf("cold ls -f of 10,000: %v, want ≤ 12 LIST and no HEAD", namesOnly)
	}
	names.unmount()

	m := startMount(t, "")
	var out string
	cold := m.requests(func() { out = run(t, "ls", "-l", m.path("big")) })
	if n := strings.Count(out, "\n"); n != 10_001 {
		t.Fatalf("ls -l printed %d lines, want 10,001", n)
	}
	if cold["ListObjectsV2"] > 12 || cold["HeadObject"] > 10_000 {
		t.Errorf("cold ls -l of 10,000: %v, want ≤ 12 LIST and ≤ 10,000 HEAD", cold)
	}
	warm := m.requests(func() { run(t, "ls", "-l", m.path("big")) })
	if warm["ListObjectsV2"] > 11 || warm["HeadObject"] != 0 {
		t.Errorf("warm ls -l of 10,000: %v, want ≤ 11 LIST and no HEAD", warm)
	}
	creates := m.requests(func() {
		for i := range 100 {
			if err := os.WriteFile(m.path(fmt.Sprintf("big/new%03d.txt", i)), []byte("y"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		run(t, "sh", "-c", "for i in $(seq 1 100); do echo x > "+m.path("big")+"/sh$i.txt; done")
	})
	if creates["ListObjectsV2"] != 0 || creates["PutObject"] > 200 {
		t.Errorf("200 creates in a folder of 10,000: %v, want no LIST and ≤ 200 PUT", creates)
	}
}
