package main

import "testing"

func TestParseS3URL(t *testing.T) {
	for in, want := range map[string][2]string{
		"s3://bucket":                 {"bucket", ""},
		"s3://bucket/":                {"bucket", ""},
		"s3://bucket/clients/acme":    {"bucket", "clients/acme"},
		"s3://bucket/clients/acme/":   {"bucket", "clients/acme"},
		"s3://firm-files/a b/c+d%20e": {"firm-files", "a b/c+d%20e"},
	} {
		b, p, err := parseS3URL(in)
		if err != nil || b != want[0] || p != want[1] {
			t.Errorf("parseS3URL(%q) = %q, %q, %v", in, b, p, err)
		}
	}
	for _, bad := range []string{"bucket", "s3://", "s3:///prefix", "s3://b/a//c", "s3://b/../escape", "s3://b/a/./c", "https://b/x"} {
		if _, _, err := parseS3URL(bad); err == nil {
			t.Errorf("parseS3URL(%q) accepted", bad)
		}
	}
}

func TestParseMode(t *testing.T) {
	if v, err := parseMode("file-mode", "0640"); err != nil || v != 0o640 {
		t.Errorf("0640 = %o, %v", v, err)
	}
	for _, bad := range []string{"999", "rw-r--r--", "", "77777"} {
		if _, err := parseMode("file-mode", bad); err == nil {
			t.Errorf("parseMode(%q) accepted", bad)
		}
	}
}
