package share

import (
	"mime"
	"testing"
	"time"
)

func TestCheckExpiry(t *testing.T) {
	for _, ok := range []time.Duration{time.Second, 120 * time.Second, MaxExpiry} {
		if err := CheckExpiry(ok); err != nil {
			t.Errorf("CheckExpiry(%v) = %v", ok, err)
		}
	}
	for _, bad := range []time.Duration{0, -time.Second, time.Millisecond, MaxExpiry + time.Second} {
		if err := CheckExpiry(bad); err == nil {
			t.Errorf("CheckExpiry(%v) accepted", bad)
		}
	}
}

func TestDispositionKeepsTheName(t *testing.T) {
	for _, name := range []string{"report.pdf", "budget 2026.xlsx", `quo"te.txt`, "façade €.txt", "bad\x01name"} {
		for _, attach := range []bool{false, true} {
			v := Disposition(name, attach)
			kind, params, err := mime.ParseMediaType(v)
			want := map[bool]string{false: "inline", true: "attachment"}[attach]
			if err != nil || kind != want || params["filename"] != name {
				t.Errorf("Disposition(%q, %v) = %q: parses as %q %v %v", name, attach, v, kind, params, err)
			}
		}
	}
}

func TestContentType(t *testing.T) {
	if got := ContentType("Report.PDF"); got != "application/pdf" {
		t.Errorf("ContentType(Report.PDF) = %q", got)
	}
	if got := ContentType("README"); got != "" {
		t.Errorf("ContentType(README) = %q", got)
	}
}
