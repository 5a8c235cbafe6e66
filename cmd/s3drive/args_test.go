package main

import (
	"slices"
	"testing"
)

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

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "512M": 512 << 20, "10G": 10 << 30,
		"10g": 10 << 30, "2GiB": 2 << 30, "1T": 1 << 40, "64K": 64 << 10} {
		if v, err := parseSize("cache-size", in); err != nil || v != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, v, err, want)
		}
	}
	for _, bad := range []string{"", "-1G", "ten", "1.5G", "9999999999T", "G"} {
		if _, err := parseSize("cache-size", bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestHelperArgs(t *testing.T) {
	flags := mountCmd().Flags()
	got, fake, err := helperArgs([]string{"s3://b/clients/acme", "/mnt/acme", "-n", "-o",
		"rw,ro,endpoint=http://h:9000,cache_dir=/var/cache/x,allow_other,uid=1000,_netdev,nofail,x-systemd.requires=network-online.target,defaults",
		"-olog-format=json"}, flags)
	want := []string{"mount", "--read-only", "--endpoint=http://h:9000", "--cache-dir=/var/cache/x", "--allow-other",
		"--uid=1000", "--log-format=json", "s3://b/clients/acme", "/mnt/acme"}
	if err != nil || fake || !slices.Equal(got, want) {
		t.Errorf("helperArgs = %q, %v, %v\nwant %q", got, fake, err, want)
	}
	if _, fake, err := helperArgs([]string{"s3://b", "/mnt", "-f"}, flags); err != nil || !fake {
		t.Errorf("-f: fake %v, %v", fake, err)
	}
	for _, bad := range [][]string{
		{"s3://b", "/mnt", "-o", "colour=blue"},
		{"s3://b", "/mnt", "-o", "endpoint"},
		{"s3://b", "/mnt", "-o", "list_page_size=3"}, // hidden: for tests only
		{"s3://b", "-o", "ro"},
		{"s3://b", "/mnt", "--endpoint", "x"},
	} {
		if _, _, err := helperArgs(bad, flags); err == nil {
			t.Errorf("helperArgs(%q) accepted", bad)
		}
	}
}
