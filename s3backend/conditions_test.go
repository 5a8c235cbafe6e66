package s3backend

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// conditionalWrites checks S3's conditional-write contract on be: a write
// to a name believed free, or based on a version the name no longer
// holds, is refused with ErrPrecondition and changes nothing.
func conditionalWrites(t *testing.T, be Backend) {
	t.Helper()
	ctx := context.Background()
	put := func(key, body string, cond Conditions) (ObjectInfo, error) {
		return be.Upload(ctx, key, strings.NewReader(body), int64(len(body)), PutOptions{Cond: cond})
	}
	v1, err := put("cond/f.txt", "one", Conditions{IfNoneMatch: true})
	if err != nil {
		t.Fatalf("create with If-None-Match on a free name: %v", err)
	}
	if _, err := put("cond/f.txt", "two", Conditions{IfNoneMatch: true}); !errors.Is(err, ErrPrecondition) {
		t.Errorf("If-None-Match on a taken name: %v, want ErrPrecondition", err)
	}
	v2, err := put("cond/f.txt", "two", Conditions{IfMatch: v1.ETag})
	if err != nil {
		t.Fatalf("If-Match the current version: %v", err)
	}
	if _, err := put("cond/f.txt", "three", Conditions{IfMatch: v1.ETag}); !errors.Is(err, ErrPrecondition) {
		t.Errorf("If-Match an old version: %v, want ErrPrecondition", err)
	}
	if _, err := be.Copy(ctx, "cond/f.txt", "cond/g.txt", 3, nil, Conditions{IfNoneMatch: true}); err != nil {
		t.Fatalf("copy onto a free name: %v", err)
	}
	if _, err := be.Copy(ctx, "cond/f.txt", "cond/g.txt", 3, nil, Conditions{IfNoneMatch: true}); !errors.Is(err, ErrPrecondition) {
		t.Errorf("copy with If-None-Match onto a taken name: %v, want ErrPrecondition", err)
	}
	if _, err := be.Copy(ctx, "cond/f.txt", "cond/g.txt", 3, nil, Conditions{IfMatch: v1.ETag}); !errors.Is(err, ErrPrecondition) {
		t.Errorf("copy with If-Match a version the destination does not hold: %v, want ErrPrecondition", err)
	}
	h, err := be.Head(ctx, "cond/f.txt")
	if err != nil || h.ETag != v2.ETag {
		t.Errorf("after refused writes the object is %v, %v; want version two", h, err)
	}
	mp, err := be.StartMultipart(ctx, "cond/f.txt", PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := mp.Part(ctx, 1, strings.NewReader("four"), 0, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := mp.Complete(ctx, Conditions{IfMatch: v1.ETag}); !errors.Is(err, ErrPrecondition) {
		t.Errorf("multipart completion with If-Match an old version: %v, want ErrPrecondition", err)
	}
	// Refused, the upload stays open to complete on other terms.
	if _, err := mp.Complete(ctx, Conditions{IfMatch: v2.ETag}); err != nil {
		t.Errorf("completing again with the current version: %v", err)
	}
}

func TestMemoryConditionalWrites(t *testing.T) { conditionalWrites(t, NewMemory()) }

// TestEmulatedConditions: ProbeConditions finds that gofakes3's CopyObject
// ignores conditions; conditions a server ignores are checked by a HEAD
// first.
func TestEmulatedConditions(t *testing.T) {
	be := backends(t)["s3"].(*S3)
	sup, err := be.ProbeConditions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sup.Copy {
		t.Fatalf("ProbeConditions on gofakes3, whose CopyObject ignores conditions: %+v", sup)
	}
	if page, _ := be.List(context.Background(), "", "", "", 10); len(page.Objects) != 0 {
		t.Errorf("the probe left %v behind", page.Objects)
	}
	be.UseConditions(ConditionSupport{}) // every condition checked by HEAD
	conditionalWrites(t, be)
}
