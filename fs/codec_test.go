package fs

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3drive/s3drive/cache"
	"github.com/s3drive/s3drive/s3backend"
)

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"report.pdf": true, "with space": true, "ünïcødé": true, ".hidden": true, "...": true,
		"": false, ".": false, "..": false, "a/b": false, "nul\x00byte": false,
		strings.Repeat("x", 255): true, strings.Repeat("x", 256): false,
	} {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestSplitKey(t *testing.T) {
	for key, want := range map[string][2]string{
		"a": {"", "a"}, "a/b": {"a/", "b"}, "a/b/c.txt": {"a/b/", "c.txt"},
	} {
		d, n := splitKey(key)
		if d != want[0] || n != want[1] {
			t.Errorf("splitKey(%q) = %q, %q", key, d, n)
		}
	}
}

func TestMtimeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1700000000", time.Unix(1700000000, 0), true},
		{"1700000000.123456789", time.Unix(1700000000, 123456789), true},
		{"1700000000.5", time.Unix(1700000000, 500000000), true},
		{"1700000000.1234567891234", time.Unix(1700000000, 123456789), true},
		{"1.7e9", time.Unix(1700000000, 0), true},
		{"", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"1700000000.-5", time.Time{}, false},
		{"NaN", time.Time{}, false},
		{"1e300", time.Time{}, false},
	} {
		got, ok := parseMtime(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseMtime(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	for _, tm := range []time.Time{time.Unix(1612325106, 123456789), time.Unix(5, 0), time.Unix(1700000000, 100)} {
		back, ok := parseMtime(formatMtime(tm))
		if !ok || !back.Equal(tm) {
			t.Errorf("mtime %v -> %q -> %v", tm, formatMtime(tm), back)
		}
	}
	if s := formatMtime(time.Unix(1612325106, 120000000)); s != "1612325106.12" {
		t.Errorf("formatMtime trims zeros: %q", s)
	}
}

func TestMetaRoundTrip(t *testing.T) {
	m := cache.Meta{Mode: syscall.S_IFREG | 0o640, Mtime: time.Unix(1612325106, 123456789),
		UID: 1000, GID: 100, HasUID: true, HasGID: true}
	md := encodeMeta(m)
	if md["mode"] != "33184" || md["mtime"] != "1612325106.123456789" || md["uid"] != "1000" || md["gid"] != "100" {
		t.Fatalf("encodeMeta = %v (s3fs/rclone keys and decimal values expected)", md)
	}
	back := decodeMeta(s3backend.ObjectInfo{Size: 3, ETag: "e", Metadata: md})
	if back.Mode != m.Mode || !back.Mtime.Equal(m.Mtime) || back.UID != 1000 || !back.HasGID || back.Size != 3 {
		t.Errorf("decodeMeta(encodeMeta(m)) = %+v", back)
	}
	link := decodeMeta(s3backend.ObjectInfo{Metadata: map[string]string{"mode": "41471"}})
	if !link.IsSymlnk {
		t.Errorf("mode 41471 (S_IFLNK|0777) not decoded as a symlink")
	}
	junk := decodeMeta(s3backend.ObjectInfo{Metadata: map[string]string{"mode": "rwx", "uid": "-1", "mtime": "soon"}})
	if junk.Mode != 0 || junk.HasUID || !junk.Mtime.IsZero() {
		t.Errorf("unparseable metadata must fall back to defaults: %+v", junk)
	}
	other := decodeMeta(s3backend.ObjectInfo{Metadata: map[string]string{"mode": "33188", "client": "acme", "reviewed-by": "ann"}})
	if md := encodeMeta(other); md["client"] != "acme" || md["reviewed-by"] != "ann" || md["mode"] != "33188" {
		t.Errorf("other tools' metadata must survive a rewrite: %v", md)
	}
	if len(encodeMeta(cache.Meta{})) != 0 {
		t.Errorf("absent attributes must not be written")
	}
}
