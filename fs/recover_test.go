package fs

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/s3drive/s3drive/s3backend"
)

func TestSameContent(t *testing.T) {
	data := bytes.Repeat([]byte("s3drive "), 5<<20) // 40 MiB
	one := md5.Sum(data)
	if !sameContent(bytes.NewReader(data), int64(len(data)), hex.EncodeToString(one[:]), 16<<20) {
		t.Error("single-PUT ETag not recognised")
	}
	var sums []byte
	for off := 0; off < len(data); off += 16 << 20 {
		s := md5.Sum(data[off:min(off+16<<20, len(data))])
		sums = append(sums, s[:]...)
	}
	all := md5.Sum(sums)
	multi := hex.EncodeToString(all[:]) + "-3"
	if !sameContent(bytes.NewReader(data), int64(len(data)), multi, 16<<20) {
		t.Error("multipart ETag not recognised")
	}
	if sameContent(bytes.NewReader(data[1:]), int64(len(data)-1), multi, 16<<20) {
		t.Error("other content taken for the same")
	}
}

func TestConflictName(t *testing.T) {
	mem := s3backend.NewMemory()
	f := &FS{be: mem}
	host, _ := os.Hostname()
	stamp := time.Now().Format("2006-01-02 15.04")
	got, err := f.conflictName(context.Background(), "docs/budget.xlsx")
	if want := "docs/budget (conflicted copy " + stamp + " " + host + ").xlsx"; err != nil || got != want {
		t.Fatalf("conflictName = %q, %v; want %q", got, err, want)
	}
	mem.PutObject(got, []byte("x"), nil)
	again, _ := f.conflictName(context.Background(), "docs/budget.xlsx")
	if again == got || !strings.HasSuffix(again, " 2).xlsx") {
		t.Errorf("second conflicted copy in the same minute: %q", again)
	}
	if dot, _ := f.conflictName(context.Background(), ".profile"); !strings.HasPrefix(dot, ".profile (conflicted copy ") {
		t.Errorf("dotfile: %q", dot)
	}
}
