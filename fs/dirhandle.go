package fs

import (
	"context"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/s3drive/s3drive/cache"
)

// dirHandle is an open directory. It reads the folder's listing at the
// first readdir (and again after a rewind), and answers READDIRPLUS's
// lookups from the caches alone: an entry whose attributes would need a
// HEAD is returned without them (node ID 0, which the kernel takes as "no
// attributes for this one"), so a reader that wants only names — ls -f,
// find, a file manager counting a folder's items — costs the listing and
// nothing more. The kernel looks the entry up on its own when a program
// asks for its attributes, and that lookup HEADs it (scan.go keeps those
// HEADs ahead of a walker).
//
// It pages through the listing by name rather than copying it: a folder of
// 100,000 entries open in ls costs a page of them, and an entry added or
// removed while it is read does not make another appear twice or not at
// all.
type dirHandle struct {
	dir    *Dir
	dirKey string
	l      *cache.Listing // nil until the first readdir; may still be fetched
	page   []fuse.DirEntry
	// last is the last listing entry paged in.
	last    string
	lastDir bool
	done    bool // the listing is read; extra follows
	// extra: entries the listing does not show yet (files created here
	// and not uploaded, folders whose markers are on their way).
	extra []fuse.DirEntry
	pos   int // entries returned, the offset of the last one
}

var dots = [...]string{".", ".."}

// dirPage is how many entries a handle takes from the listing at once.
const dirPage = 512

var (
	_ = (fs.NodeOpendirHandler)((*Dir)(nil))
	_ = (fs.FileReaddirenter)((*dirHandle)(nil))
	_ = (fs.FileSeekdirer)((*dirHandle)(nil))
	_ = (fs.FileLookuper)((*dirHandle)(nil))
	_ = (fs.FileReleasedirer)((*dirHandle)(nil))
)

func (d *Dir) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return &dirHandle{dir: d}, 0, 0
}

// go-fuse calls a handle's methods one at a time (under the handle's own
// lock), so dirHandle needs none.

func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if h.pos < len(dots) {
		// "." and "..", as on a local disk (readdir(3) shows them; some
		// programs count on them). go-fuse answers READDIRPLUS for them.
		h.pos++
		in := h.dir.EmbeddedInode()
		if _, parent := in.Parent(); h.pos == 2 && parent != nil {
			in = parent
		}
		return &fuse.DirEntry{Name: dots[h.pos-1], Mode: syscall.S_IFDIR, Ino: in.StableAttr().Ino, Off: uint64(h.pos)}, 0
	}
	if h.l == nil {
		if errno := h.open(ctx); errno != 0 {
			return nil, errno
		}
	}
	if len(h.page) == 0 && !h.done {
		if errno := h.nextPage(ctx); errno != 0 {
			return nil, errno
		}
	}
	var de fuse.DirEntry
	switch {
	case len(h.page) > 0:
		de, h.page = h.page[0], h.page[1:]
	case len(h.extra) > 0:
		de, h.extra = h.extra[0], h.extra[1:]
	default:
		return nil, 0
	}
	h.pos++
	de.Off = uint64(h.pos)
	return &de, 0
}

// nextPage takes the next entries from the listing, waiting for them if
// it is still being fetched; at its end, it adds what it does not show.
func (h *dirHandle) nextPage(ctx context.Context) syscall.Errno {
	for {
		entries, more, err := h.l.Page(h.last, h.lastDir, dirPage)
		if err != nil {
			return toErrno(h.dir.fsys.log, "readdir", h.dirKey, err)
		}
		if len(entries) > 0 {
			last := entries[len(entries)-1]
			h.last, h.lastDir = last.Name, last.Dir
			h.page = h.dir.fsys.dirEntries(h.dirKey, entries)
			return 0
		}
		if more == nil {
			h.done = true
			h.extra = h.dir.fsys.unlisted(h.dirKey, h.l)
			return 0
		}
		select {
		case <-more:
		case <-ctx.Done():
			return syscall.EINTR
		}
	}
}

// unlisted returns the entries of dirKey that its listing l does not show
// yet: files created here and not uploaded, folders whose markers are on
// their way.
func (f *FS) unlisted(dirKey string, l *cache.Listing) []fuse.DirEntry {
	var out []fuse.DirEntry
	local := map[string]bool{}
	for _, name := range f.localIn(dirKey) {
		if _, listed := l.Get(name); !listed {
			local[name] = true
			out = append(out, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG})
		}
	}
	// Uploaded since the listing was asked for: no longer local, maybe not
	// in the listing. Still there unless removed here since.
	for _, name := range f.landedKeys.since(dirKey, l.Fetched()) {
		if _, listed := l.Get(name); listed || local[name] {
			continue
		}
		if _, known := f.cache.Known(dirKey + name); known {
			out = append(out, f.dirEntries(dirKey, []cache.Entry{{Name: name}})...)
		}
	}
	for _, name := range f.pendingIn(dirKey) {
		if _, listed := l.Get(name); !listed {
			out = append(out, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR})
		}
	}
	return out
}

// open starts reading the folder's listing for the first readdir (or
// after a rewind).
func (h *dirHandle) open(ctx context.Context) syscall.Errno {
	d := h.dir
	dirKey, ok := d.key()
	if !ok {
		return syscall.ENOENT
	}
	l, err := d.fsys.listShared(ctx, dirKey)
	if err != nil {
		return toErrno(d.fsys.log, "readdir", dirKey, err)
	}
	l.MarkRead()
	d.fsys.walking(dirKey)
	*h = dirHandle{dir: d, dirKey: dirKey, l: l, pos: h.pos}
	return 0
}

// dirEntries turns listing entries into directory entries with their
// types (a symlink is known only from its metadata).
func (f *FS) dirEntries(dirKey string, entries []cache.Entry) []fuse.DirEntry {
	out := make([]fuse.DirEntry, 0, len(entries))
	for _, e := range entries {
		mode := uint32(syscall.S_IFREG)
		if e.Dir {
			mode = syscall.S_IFDIR
		} else if m, ok := f.cache.Known(dirKey + e.Name); ok && m.IsSymlnk {
			mode = syscall.S_IFLNK
		} else if ok {
			mode = fileType(m)
		}
		out = append(out, fuse.DirEntry{Name: e.Name, Mode: mode})
	}
	return out
}

// Seekdir moves to the entry after offset off. 0 is a rewind, which reads
// the folder again as POSIX asks of rewinddir; other offsets (telldir's,
// rare) are found again by reading from the start.
func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if off == uint64(h.pos) && h.l != nil {
		return 0
	}
	*h = dirHandle{dir: h.dir}
	for range off {
		if de, errno := h.Readdirent(ctx); errno != 0 || de == nil {
			return errno
		}
	}
	return 0
}

func (h *dirHandle) Releasedir(ctx context.Context, releaseFlags uint32) { h.page, h.extra = nil, nil }

// Lookup answers READDIRPLUS for name from what the mount already knows,
// or returns no attributes (an errno, which go-fuse sends as node ID 0).
func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	d := h.dir
	dirKey, ok := d.key()
	if !ok {
		return nil, syscall.ENOENT
	}
	if _, orphan := d.fsys.orphans.Load(childKey(dirKey, name)); orphan {
		return nil, syscall.EAGAIN // its own lookup stores the forgotten file's changes first
	}
	if ch := d.knownChild(dirKey, name, &out.Attr); ch != nil {
		return ch, 0
	}
	res, known := d.fsys.resolveCached(dirKey, name)
	if !known {
		return nil, syscall.EAGAIN
	}
	return d.child(ctx, dirKey, name, res, &out.Attr), 0
}

// localIn returns the names of the files in dirKey created on this mount
// and not uploaded yet.
func (f *FS) localIn(dirKey string) []string {
	var names []string
	for _, file := range f.dirtyFiles() {
		if !file.isLocal() {
			continue
		}
		key, ok := file.key()
		if rest, in := strings.CutPrefix(key, dirKey); ok && in && !strings.Contains(rest, "/") {
			names = append(names, rest)
		}
	}
	return names
}
