package fs

import (
	"mime"
	"path"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
)

// legacyDirSuffix marks s3fs's old-style directory objects ("d_$folder$").
const legacyDirSuffix = "_$folder$"

// validName reports whether one key segment can be shown as a file name.
// Keys with empty, "." or ".." segments, segments over NAME_MAX, or NUL
// bytes exist in S3 but cannot be files; they are hidden, which also means
// no path built from a listing can climb out of the mount's prefix.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= 255 &&
		!strings.ContainsAny(name, "/\x00")
}

// nameMax is the longest file name, in bytes (NAME_MAX).
const nameMax = 255

// checkName tells whether name can be made (or found) in the folder dirKey:
// ENAMETOOLONG for a name over nameMax or a key over what the store holds
// (a folder's key carries its marker's "/"), EINVAL for a name no key can
// carry. Refusing here, at once, beats an upload that fails at close.
func (f *FS) checkName(dirKey, name string, dir bool) syscall.Errno {
	if len(name) > nameMax {
		return syscall.ENAMETOOLONG
	}
	if !validName(name) {
		return syscall.EINVAL
	}
	n := len(dirKey) + len(name)
	if dir {
		n++
	}
	if n > f.be.MaxKeyLen() {
		return syscall.ENAMETOOLONG
	}
	return 0
}

// childKey is the key of name inside the directory whose key is dirKey
// ("" for the root, else ending in "/").
func childKey(dirKey, name string) string { return dirKey + name }

// dirKeyOf turns a path relative to the root into a directory key.
func dirKeyOf(p string) string {
	if p == "" {
		return ""
	}
	return p + "/"
}

// splitKey splits an object key into its directory key and base name.
func splitKey(key string) (dirKey, name string) {
	i := strings.LastIndexByte(key, '/')
	return key[:i+1], key[i+1:]
}

// pathOf returns the path of in relative to root, or false when the inode
// is no longer reachable (it was unlinked while open). Paths are computed
// from the live tree, not stored, so a rename moves every descendant's key
// at once.
func pathOf(root, in *fs.Inode) (string, bool) {
	var segs []string
	for in != root {
		name, parent := in.Parent()
		if parent == nil {
			return "", false
		}
		segs = append(segs, name)
		in = parent
	}
	for i, j := 0, len(segs)-1; i < j; i, j = i+1, j-1 {
		segs[i], segs[j] = segs[j], segs[i]
	}
	return strings.Join(segs, "/"), true
}

// contentType picks the Content-Type for an upload from the file name, so
// that shared links open correctly in a browser.
func contentType(key string) string {
	if t := mime.TypeByExtension(path.Ext(key)); t != "" {
		return t
	}
	return "application/octet-stream"
}
