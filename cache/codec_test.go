package cache

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestStoredFormat: every field survives the store's binary form, entries
// written as JSON by earlier versions still read, and a damaged entry is
// an error, not a wrong answer.
func TestStoredFormat(t *testing.T) {
	full := Meta{Size: 1 << 40, ETag: `"abc-3"`, LastModified: time.Unix(1_700_000_000, 0).UTC(),
		Mtime: time.Unix(-100, 123_456_789).UTC(), Mode: 0o100644, UID: 1000, GID: 65534, HasUID: true, HasGID: true,
		Target: "../x", IsSymlnk: true, Extra: map[string]string{"a": "1", "b": ""}, StorageClass: "GLACIER",
		Ctime: time.Unix(1_800_000_000, 5).UTC(), Atime: time.Unix(1_900_000_000, 0).UTC()}
	for _, m := range []Meta{{}, {Size: 1, ETag: `"e"`}, {Atime: time.Unix(1, 0).UTC()}, full} {
		v := encodeStored(&m)
		got, err := decodeStored(v)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %+v: %+v, %v", m, got, err)
		}
		for cut := range len(v) {
			if _, err := decodeStored(v[:cut]); err == nil {
				t.Errorf("%+v cut to %d bytes decoded without error", m, cut)
			}
		}
	}
	old, _ := json.Marshal(full)
	if got, err := decodeStored(old); err != nil || !reflect.DeepEqual(got, full) {
		t.Errorf("JSON entry: %+v, %v", got, err)
	}
	// An entry written before ctime and atime were stored reads as one
	// without them.
	before := full
	before.Ctime, before.Atime = time.Time{}, time.Time{}
	if got, err := decodeStored(encodeStored(&before)); err != nil || !got.Ctime.IsZero() || !got.Atime.IsZero() {
		t.Errorf("an entry without the times: %+v, %v", got, err)
	}
	if len(encodeStored(&full)) >= len(old)/2 {
		t.Errorf("binary form %d bytes, JSON %d: want under half", len(encodeStored(&full)), len(old))
	}
}
