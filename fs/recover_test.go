package fs

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3drive/s3drive/cache"
	"github.com/s3drive/s3drive/fs/journal"
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

// TestRecoverRules: what a previous run left, entry by entry, and what
// Recover does with it.
func TestRecoverRules(t *testing.T) {
	mem := s3backend.NewMemory()
	base := mem.PutObject("edited.txt", []byte("v1"), nil)
	mem.PutObject("changed.txt", []byte("theirs"), nil)
	state := t.TempDir()
	staging := filepath.Join(state, "staging")
	os.MkdirAll(staging, 0o700)
	j, err := journal.Open(filepath.Join(state, "journal.db"), "s3://b/p")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	stage := func(name, content string) {
		if err := os.WriteFile(filepath.Join(staging, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	stage("stage-1", "brand new")
	j.Record(journal.Entry{Stage: "stage-1", Key: "new.txt", Size: 9, Closed: true})
	stage("stage-2", "v2 of edited")
	j.Record(journal.Entry{Stage: "stage-2", Key: "edited.txt", Base: base.ETag, Size: 12, Closed: true})
	stage("stage-3", "mine")
	j.Record(journal.Entry{Stage: "stage-3", Key: "changed.txt", Base: "an-older-etag", Size: 4, Closed: true})
	stage("stage-4", "half writ")
	j.Record(journal.Entry{Stage: "stage-4", Key: "copying.iso", Size: 9})
	stage("stage-5", "short")
	j.Record(journal.Entry{Stage: "stage-5", Key: "torn.txt", Size: 4096, Closed: true})
	stage("stage-6", "nobody's")
	stage("stage-7", "same as S3")
	j.Record(journal.Entry{Stage: "stage-7", Key: "clean.txt", Clean: true})
	j.Record(journal.Entry{Stage: "stage-8", Key: "gone.txt", Closed: true}) // its file went
	j.UploadStarted("big.iso", "upload-1")
	// Uploaded before the crash, unanswered: with the attributes of the
	// entry, or with those it had before a chmod.
	mem.PutObject("landed.txt", []byte("landed"), map[string]string{"mode": "33188"})
	stage("stage-9", "landed")
	j.Record(journal.Entry{Stage: "stage-9", Key: "landed.txt", Size: 6, Closed: true, Metadata: map[string]string{"mode": "33188"}})
	mem.PutObject("chmodded.sh", []byte("#!/bin/sh"), map[string]string{"mode": "33188"})
	stage("stage-10", "#!/bin/sh")
	j.Record(journal.Entry{Stage: "stage-10", Key: "chmodded.sh", Size: 9, Closed: true, Metadata: map[string]string{"mode": "33261"}})
	// An earlier attempt, of other content, landed unanswered: this run's
	// own, replaced rather than kept beside.
	first := mem.PutObject("retried.txt", []byte("first try"), nil)
	stage("stage-11", "second try")
	j.Record(journal.Entry{Stage: "stage-11", Key: "retried.txt", Size: 10, Closed: true, Maybe: []string{first.ETag}})

	c, _ := cache.Open(cache.Options{TTL: time.Minute, NegativeTTL: time.Minute})
	fsys, err := New(Options{Backend: mem, Cache: c, StagingDir: staging, Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := fsys.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	objects := map[string]string{}
	for _, k := range mem.Keys() {
		rc, _ := mem.Get(context.Background(), k, 0, -1, "")
		b, _ := io.ReadAll(rc)
		objects[k] = string(b)
	}
	var conflicted string
	for k := range objects {
		if strings.HasPrefix(k, "changed (conflicted copy ") {
			conflicted = k
		}
	}
	if objects["new.txt"] != "brand new" || objects["edited.txt"] != "v2 of edited" || objects["retried.txt"] != "second try" ||
		objects["changed.txt"] != "theirs" || conflicted == "" || objects[conflicted] != "mine" {
		t.Errorf("objects after recovery: %v", objects)
	}
	for _, k := range []string{"copying.iso", "torn.txt", "clean.txt", "gone.txt"} {
		if _, ok := objects[k]; ok {
			t.Errorf("%s uploaded by recovery", k)
		}
	}
	kept, _ := os.ReadDir(filepath.Join(state, "lost+found"))
	if len(kept) != 3 || len(rec.Kept) != 3 { // copying.iso, torn.txt, the unnamed stage-6
		t.Errorf("lost+found holds %d, reported %v", len(kept), rec.Kept)
	}
	if left, _ := os.ReadDir(staging); len(left) != 0 {
		t.Errorf("staging still holds %d files", len(left))
	}
	if entries, _ := j.Entries(); len(entries) != 0 {
		t.Errorf("journal still holds %+v", entries)
	}
	if ups, _ := j.Uploads(); len(ups) != 0 || rec.Aborted != 1 || mem.Counters()[s3backend.OpAbortMultipart] != 1 {
		t.Errorf("open uploads %v, aborted %d", ups, rec.Aborted)
	}
	if info, err := mem.Head(context.Background(), "chmodded.sh"); err != nil || info.Metadata["mode"] != "33261" {
		t.Errorf("chmodded.sh holds %v, %v; want the journaled mode", info.Metadata, err)
	}
	if len(rec.Uploaded) != 5 || len(rec.Conflicted) != 1 || rec.Pending != 0 {
		t.Errorf("recovery report %+v", rec)
	}
}
