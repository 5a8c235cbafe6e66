package fs

import (
	"math"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/s3drive/s3drive/cache"
	"github.com/s3drive/s3drive/s3backend"
)

// User-metadata names for attributes, shared with s3fs and rclone so that
// objects written by any of them show the same times and modes.
const (
	metaMtime = "mtime" // decimal seconds, optional fraction
	metaMode  = "mode"  // decimal st_mode, type bits included
	metaUID   = "uid"
	metaGID   = "gid"
	metaRdev  = "rdev" // a device node's number (s3fs's name)
	metaCtime = "ctime"
	metaAtime = "atime"
)

// oldFolderPerm is the permission of an old-style s3fs folder object
// that carries no mode.
const oldFolderPerm = 0o755

// fileType is the type of a file-like object: a regular file, or a FIFO,
// socket or device node stored as a zero-byte object whose mode says so.
func fileType(m cache.Meta) uint32 {
	switch t := m.Mode & syscall.S_IFMT; t {
	case syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
		return t
	}
	return syscall.S_IFREG
}

// rdev is a device node's number, or 0.
func rdev(m cache.Meta) uint32 {
	v, _ := strconv.ParseUint(m.Extra[metaRdev], 10, 32)
	return uint32(v)
}

// dirContentType is what s3fs gives directory markers.
const dirContentType = "application/x-directory"

// encodeMeta renders attributes as user metadata.
func encodeMeta(m cache.Meta) map[string]string {
	md := make(map[string]string, len(m.Extra)+4)
	for k, v := range m.Extra {
		md[k] = v
	}
	if !m.Mtime.IsZero() {
		md[metaMtime] = formatMtime(m.Mtime)
	}
	if m.Mode != 0 {
		md[metaMode] = strconv.FormatUint(uint64(m.Mode), 10)
	}
	if m.HasUID {
		md[metaUID] = strconv.FormatUint(uint64(m.UID), 10)
	}
	if m.HasGID {
		md[metaGID] = strconv.FormatUint(uint64(m.GID), 10)
	}
	if !m.Ctime.IsZero() {
		md[metaCtime] = formatMtime(m.Ctime)
	}
	if !m.Atime.IsZero() {
		md[metaAtime] = formatMtime(m.Atime)
	}
	return md
}

// decodeMeta reads what a HEAD returned. Unparseable values are ignored
// (the mount's defaults apply), never fatal: other tools write these too.
func decodeMeta(info s3backend.ObjectInfo) cache.Meta {
	m := cache.Meta{Size: info.Size, ETag: info.ETag, LastModified: info.LastModified, StorageClass: info.StorageClass}
	if m.StorageClass == "" {
		m.StorageClass = "STANDARD" // S3 omits the header for the default class
	}
	md := info.Metadata
	if t, ok := parseMtime(md[metaMtime]); ok {
		m.Mtime = t
	}
	if t, ok := parseMtime(md[metaCtime]); ok {
		m.Ctime = t
	}
	if t, ok := parseMtime(md[metaAtime]); ok {
		m.Atime = t
	}
	if v, err := strconv.ParseUint(md[metaMode], 10, 32); err == nil && v != 0 {
		m.Mode = uint32(v)
	}
	if v, err := strconv.ParseUint(md[metaUID], 10, 32); err == nil {
		m.UID, m.HasUID = uint32(v), true
	}
	if v, err := strconv.ParseUint(md[metaGID], 10, 32); err == nil {
		m.GID, m.HasGID = uint32(v), true
	}
	m.IsSymlnk = m.Mode&syscall.S_IFMT == syscall.S_IFLNK
	if info.ContentType == dirContentType && !strings.HasSuffix(info.Key, "/") && m.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		// s3fs before 1.8x marked a folder with the key "name", no slash,
		// of this type: it is the folder "name".
		m.Mode = syscall.S_IFDIR | oldFolderPerm | m.Mode&0o7777
	}
	for k, v := range md {
		switch k {
		case metaMtime, metaMode, metaUID, metaGID, metaCtime, metaAtime:
		default:
			if m.Extra == nil {
				m.Extra = map[string]string{}
			}
			m.Extra[k] = v
		}
	}
	return m
}

// formatMtime writes seconds with nanoseconds, which s3fs (integer part)
// and rclone (fraction) both read.
func formatMtime(t time.Time) string {
	s := strconv.FormatInt(t.Unix(), 10)
	if ns := t.Nanosecond(); ns != 0 {
		s += "." + strings.TrimRight(strconv.FormatInt(int64(ns)+1e9, 10)[1:], "0")
	}
	return s
}

// parseMtime reads "1700000000" and "1700000000.123456789" exactly (no
// float rounding), and tolerates a float rendering such as "1.7e9".
func parseMtime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	whole, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || strings.ContainsAny(frac, "eE") {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e12 {
			return time.Time{}, false
		}
		sec = int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), true
	}
	var nsec int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		frac += strings.Repeat("0", 9-len(frac))
		if nsec, err = strconv.ParseInt(frac, 10, 64); err != nil || nsec < 0 {
			return time.Time{}, false
		}
	}
	return time.Unix(sec, nsec), true
}
