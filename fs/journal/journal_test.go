package journal

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestEntriesSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(path, "s3://b/p")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, "s3://b/p"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	j.Record(Entry{Stage: "stage-1", Key: "a.txt", Size: 3})
	j.Durable(Entry{Stage: "stage-2", Key: "b.txt", Base: "etag", Closed: true, Metadata: map[string]string{"mode": "33188"}})
	j.Record(Entry{Stage: "stage-3", Key: "c.txt"})
	j.Forget("stage-3")
	j.UploadStarted("big", "id-1")
	j.UploadStarted("big2", "id-2")
	j.UploadEnded("big2", "id-2")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err = Open(path, "s3://b/p")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	entries, err := j.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Key != "a.txt" || entries[0].Closed ||
		entries[1].Key != "b.txt" || !entries[1].Closed || entries[1].Base != "etag" ||
		entries[1].Metadata["mode"] != "33188" || entries[1].Source != "s3://b/p" {
		t.Fatalf("entries after reopen: %+v", entries)
	}
	ups, _ := j.Uploads()
	if len(ups) != 1 || ups[0] != (Upload{Key: "big", ID: "id-1"}) {
		t.Fatalf("uploads after reopen: %+v", ups)
	}
}

func TestNilJournalRecordsNothing(t *testing.T) {
	var j *Journal
	if err := j.Record(Entry{Stage: "x"}); err != nil {
		t.Fatal(err)
	}
	if e, err := j.Entries(); e != nil || err != nil {
		t.Fatal(e, err)
	}
}

func BenchmarkRecordForget(b *testing.B) {
	j, err := Open(filepath.Join(b.TempDir(), "journal.db"), "s3://b")
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	for b.Loop() {
		j.Record(Entry{Stage: "stage-123456", Key: "some/folder/file.txt", Closed: true})
		j.Forget("stage-123456")
	}
}
