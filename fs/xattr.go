package fs

import (
	"context"
	"maps"
	"sort"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
)

// Extended attributes of files map to user metadata: "user.NAME" is
// x-amz-meta-NAME, so tags set with setfattr are visible to every S3 client.
// "user.s3.etag" and "user.s3.storage-class" are read-only and show the
// object's ETag and storage class; "user.s3drive.url", not listed, is a
// share link (sharelinks.go). Names the drive
// itself stores attributes under (mtime, mode, uid, gid) are not writable
// this way: chmod, chown and touch are.
const (
	xattrUser  = "user."
	xattrETag  = "user.s3.etag"
	xattrClass = "user.s3.storage-class"
	// XATTR_CREATE and XATTR_REPLACE from <sys/xattr.h>.
	xattrCreate  = 1
	xattrReplace = 2
)

var (
	_ = (fs.NodeGetxattrer)((*File)(nil))
	_ = (fs.NodeSetxattrer)((*File)(nil))
	_ = (fs.NodeRemovexattrer)((*File)(nil))
	_ = (fs.NodeListxattrer)((*File)(nil))
)

// metaName returns the metadata name behind a writable xattr, or an errno.
func metaName(attr string) (string, syscall.Errno) {
	name, ok := strings.CutPrefix(attr, xattrUser)
	if !ok {
		return "", syscall.ENOTSUP // security.*, trusted.*, system.*: S3 has none
	}
	switch name {
	case metaMtime, metaMode, metaUID, metaGID, metaRdev, metaCtime, metaAtime:
		return "", syscall.EPERM
	}
	if strings.HasPrefix(name, "s3.") || strings.HasPrefix(name, "s3drive.") {
		return "", syscall.EPERM
	}
	if name == "" || !validHeaderName(name) {
		return "", syscall.EINVAL
	}
	return name, 0
}

// validHeaderName accepts what S3 keeps unchanged as a metadata name:
// lower-case letters, digits and - _ . (S3 lower-cases everything else).
func validHeaderName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validHeaderValue accepts printable ASCII, which HTTP headers carry intact.
func validHeaderValue(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// copyOut answers a get/list xattr call: the size when dest is empty.
func copyOut(dest []byte, v []byte) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (f *File) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if attr == xattrURL {
		return f.linkAttr(ctx, dest)
	}
	f.mu.Lock()
	m, local := f.meta, f.local
	f.mu.Unlock()
	if attr == xattrETag {
		if local || m.ETag == "" {
			return 0, syscall.ENODATA
		}
		return copyOut(dest, []byte(m.ETag))
	}
	if attr == xattrClass {
		class := m.StorageClass
		if class == "" && !local {
			class = "STANDARD" // uploaded by this mount, which sets no class
		}
		if class == "" {
			return 0, syscall.ENODATA
		}
		return copyOut(dest, []byte(class))
	}
	name, ok := strings.CutPrefix(attr, xattrUser)
	v, found := m.Extra[name]
	if !ok || !found || name == metaRdev {
		return 0, syscall.ENODATA
	}
	return copyOut(dest, []byte(v))
}

func (f *File) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	f.mu.Lock()
	m, local := f.meta, f.local
	f.mu.Unlock()
	names := make([]string, 0, len(m.Extra)+1)
	for k := range m.Extra {
		if k != metaRdev { // an attribute (stat's), not user metadata
			names = append(names, xattrUser+k)
		}
	}
	sort.Strings(names)
	if !local && m.ETag != "" {
		names = append(names, xattrETag, xattrClass)
	}
	var out []byte
	for _, n := range names {
		out = append(append(out, n...), 0)
	}
	return copyOut(dest, out)
}

func (f *File) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	name, errno := metaName(attr)
	if errno != 0 {
		return errno
	}
	if !validHeaderValue(data) {
		return syscall.EINVAL
	}
	return f.changeExtra(ctx, func(extra map[string]string) syscall.Errno {
		_, exists := extra[name]
		switch {
		case flags&xattrCreate != 0 && exists:
			return syscall.EEXIST
		case flags&xattrReplace != 0 && !exists:
			return syscall.ENODATA
		}
		extra[name] = string(data)
		return 0
	})
}

func (f *File) Removexattr(ctx context.Context, attr string) syscall.Errno {
	name, errno := metaName(attr)
	if errno != 0 {
		return errno
	}
	return f.changeExtra(ctx, func(extra map[string]string) syscall.Errno {
		if _, ok := extra[name]; !ok {
			return syscall.ENODATA
		}
		delete(extra, name)
		return 0
	})
}

// changeExtra applies change to the user metadata and stores it: with the
// pending upload if there is one, else by a self-copy (one CopyObject).
func (f *File) changeExtra(ctx context.Context, change func(map[string]string) syscall.Errno) syscall.Errno {
	if f.fsys.opts.ReadOnly {
		return syscall.EROFS
	}
	f.ioMu.Lock()
	defer f.ioMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	extra := maps.Clone(f.meta.Extra)
	if extra == nil {
		extra = map[string]string{}
	}
	if errno := change(extra); errno != 0 {
		return errno
	}
	old := f.meta
	f.meta.Extra = extra
	if f.dirty || f.local {
		return 0
	}
	if errno := f.rewriteMetaLocked(ctx); errno != 0 {
		f.meta = old
		return errno
	}
	return 0
}
