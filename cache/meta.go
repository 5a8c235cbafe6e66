// Package cache keeps what the mount knows about objects so that browsing
// costs as few S3 requests as possible without ever serving stale data.
//
// Three things are cached, each in a golang-lru/v2 LRU:
//   - object metadata (Meta), also written through to a persistent bbolt
//     store so that it survives a remount;
//   - negative lookups, for names file managers probe and never find;
//   - directory listings, so that lookups in a listed folder are answered
//     without a request.
//
// Data (data.go) is the fourth: whole files' content on local disk, by key
// and ETag, so that a file read or written once is not fetched again.
//
// Metadata is never trusted by age alone: S3 listings carry each object's
// ETag, size and LastModified but not its user metadata (mtime, mode), so an
// entry is used only while a listing (or HEAD) still shows the same ETag,
// size and LastModified. An object another client changed is therefore
// refetched, never served stale; an object this mount wrote or has seen needs
// no HEAD, even after a remount.
package cache

import (
	"time"
)

// Meta is what the mount knows about one object.
type Meta struct {
	Size         int64     `json:"s"`
	ETag         string    `json:"e"`
	LastModified time.Time `json:"l"` // zero until a listing or HEAD showed it
	// Attributes from user metadata; zero / false where the object has none.
	Mtime    time.Time `json:"m"`
	Mode     uint32    `json:"o"` // st_mode with type bits
	UID      uint32    `json:"u"`
	GID      uint32    `json:"g"`
	HasUID   bool      `json:"hu"`
	HasGID   bool      `json:"hg"`
	Target   string    `json:"t,omitempty"` // symlink target
	IsSymlnk bool      `json:"y,omitempty"`
	// Extra is the object's other user metadata (lower-case names without
	// "x-amz-meta-"), kept so that rewriting attributes never drops what
	// other tools stored.
	Extra map[string]string `json:"x,omitempty"`
	// StorageClass as S3 reported it ("" until a HEAD showed it).
	StorageClass string `json:"c,omitempty"`
	// Ctime is when the attributes or content last changed (x-amz-meta-ctime),
	// Atime the access time utimensat set (x-amz-meta-atime); zero where
	// the object has none (then mtime stands for both).
	Ctime time.Time `json:"ct,omitzero"`
	Atime time.Time `json:"at,omitzero"`
}

// Observed is what a listing says of an object.
type Observed struct {
	Size         int64
	ETag         string
	LastModified time.Time
}

// Matches reports whether m still describes the object o was observed from.
// LastModified is compared to the second: HEAD answers carry HTTP dates,
// listings carry milliseconds. An entry recorded from an upload has no
// LastModified yet and is matched on ETag and size alone.
func (m Meta) Matches(o Observed) bool {
	if m.ETag != o.ETag || m.Size != o.Size {
		return false
	}
	if m.LastModified.IsZero() || o.LastModified.IsZero() {
		return true
	}
	return m.LastModified.Unix() == o.LastModified.Unix()
}
