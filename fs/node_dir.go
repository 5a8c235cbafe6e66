package fs

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/s3drive/s3drive/cache"
	"github.com/s3drive/s3drive/s3backend"
)

// Dir is a directory: the root, a "dir/" marker, or a prefix other keys
// share (implicit).
type Dir struct {
	fs.Inode
	fsys *FS
}

var (
	_ = (fs.NodeLookuper)((*Dir)(nil))
	_ = (fs.NodeGetattrer)((*Dir)(nil))
	_ = (fs.NodeFsyncer)((*Dir)(nil))
	_ = (fs.NodeSetattrer)((*Dir)(nil))
	_ = (fs.NodeMkdirer)((*Dir)(nil))
	_ = (fs.NodeRmdirer)((*Dir)(nil))
	_ = (fs.NodeUnlinker)((*Dir)(nil))
	_ = (fs.NodeCreater)((*Dir)(nil))
	_ = (fs.NodeMknoder)((*Dir)(nil))
	_ = (fs.NodeSymlinker)((*Dir)(nil))
	_ = (fs.NodeLinker)((*Dir)(nil))
	_ = (fs.NodeRenamer)((*Dir)(nil))
	_ = (fs.NodeStatfser)((*Dir)(nil))
	_ = (fs.NodeGetxattrer)((*Dir)(nil))
)

// key is the directory's key prefix: "" for the root, else "path/".
func (d *Dir) key() (string, bool) {
	p, ok := pathOf(d.fsys.rootInode(), d.EmbeddedInode())
	return dirKeyOf(p), ok
}

func (d *Dir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	dirKey, ok := d.key()
	if !ok {
		return nil, syscall.ENOENT
	}
	switch d.fsys.checkName(dirKey, name, false) {
	case 0:
	case syscall.ENAMETOOLONG:
		return nil, syscall.ENAMETOOLONG
	default:
		return nil, syscall.ENOENT
	}
	// A file the kernel forgot with changes still to store (an upload to
	// retry, attributes waiting) exists only here until they are stored:
	// they go first, so that the answer and any new inode take them.
	if _, errno := d.fsys.settleOrphan(ctx, childKey(dirKey, name)); errno != 0 {
		return nil, errno
	}
	if ch := d.knownChild(dirKey, name, &out.Attr); ch != nil {
		return ch, 0
	}
	res, err := d.fsys.resolve(ctx, dirKey, name)
	if err != nil {
		if d.fsys.awaiting(childKey(dirKey, name)) {
			// An upload link may fill it: no negative entry in the kernel
			// (go-fuse sets one for a zero timeout).
			out.SetEntryTimeout(time.Nanosecond)
		}
		return nil, toErrno(d.fsys.log, "lookup", childKey(dirKey, name), err)
	}
	return d.child(ctx, dirKey, name, res, &out.Attr), 0
}

// knownChild returns name's inode if it answers a lookup by itself: a file
// created here and not uploaded yet (it exists only here), or a file whose
// attributes a fresh listing confirms. The second spares the metadata
// cache, which need not hold what the kernel's inodes already do.
func (d *Dir) knownChild(dirKey, name string, out *fuse.Attr) *fs.Inode {
	ch := d.GetChild(name)
	if ch == nil {
		return nil
	}
	file, ok := ch.Operations().(*File)
	if !ok {
		return nil
	}
	if file.isLocal() {
		file.fillAttr(out)
		return ch
	}
	l := d.fsys.listingFor(dirKey, name)
	if l == nil {
		return nil
	}
	if e, listed := l.Get(name); !listed || e.Dir || !file.confirmedBy(e.Observed) {
		return nil
	}
	d.fsys.scanning(l, dirKey, name, false)
	d.fsys.inodes.used(ch)
	file.fillAttr(out)
	return ch
}

// child returns the inode for a resolved name, reusing the existing one
// when its type still matches, so that state kept on the inode (staged
// writes) is never split between two nodes.
func (d *Dir) child(ctx context.Context, dirKey, name string, res resolved, out *fuse.Attr) *fs.Inode {
	n := d.resolvedChild(ctx, dirKey, name, res, out)
	if res.kind != kindDir {
		d.fsys.inodes.used(n)
	}
	return n
}

func (d *Dir) resolvedChild(ctx context.Context, dirKey, name string, res resolved, out *fuse.Attr) *fs.Inode {
	existing := d.GetChild(name)
	switch res.kind {
	case kindDir:
		if existing != nil {
			if _, ok := existing.Operations().(*Dir); ok {
				d.fsys.attrFor(res.meta, syscall.S_IFDIR, out)
				return existing
			}
		}
		d.fsys.attrFor(res.meta, syscall.S_IFDIR, out)
		return d.NewInode(ctx, &Dir{fsys: d.fsys}, d.fsys.stable(syscall.S_IFDIR))
	case kindSymlink:
		if existing != nil {
			if l, ok := existing.Operations().(*Symlink); ok {
				l.setMeta(res.meta)
				d.fsys.attrFor(res.meta, syscall.S_IFLNK, out)
				return existing
			}
		}
		d.fsys.attrFor(res.meta, syscall.S_IFLNK, out)
		return d.NewInode(ctx, &Symlink{fsys: d.fsys, meta: res.meta}, d.fsys.stable(syscall.S_IFLNK))
	default:
		if existing != nil {
			if file, ok := existing.Operations().(*File); ok && existing.StableAttr().Mode == fileType(res.meta) {
				file.refresh(res.meta, dirKey, res.asOf)
				file.fillAttr(out)
				return existing
			}
		}
		if key := childKey(dirKey, name); settled(d.fsys.settleOrphan(ctx, key)) {
			// The forgotten file's changes are stored: take them.
			if m, ok := d.fsys.cache.Known(key); ok {
				res.meta = m
			}
		}
		file := &File{fsys: d.fsys, meta: res.meta}
		file.fillAttr(out)
		return d.NewInode(ctx, file, d.fsys.stable(fileType(res.meta)))
	}
}

func (d *Dir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	dirKey, _ := d.key()
	if dirKey == "" {
		d.fsys.loadRoot(ctx)
	}
	d.fsys.attrFor(d.fsys.dirMeta(dirKey), syscall.S_IFDIR, &out.Attr)
	return 0
}

// loadRoot reads a prefix mount's root attributes from the prefix's marker,
// once per mount: a one-key LIST finds whether there is a marker, and a
// HEAD reads it if there is (a listing shows no attributes).
func (f *FS) loadRoot(ctx context.Context) {
	if !f.opts.PrefixRoot || f.rootLoaded.Load() || f.be.Offline() {
		return
	}
	if _, ok := f.pendingMarker(""); ok {
		return
	}
	// One key of the root's listing shows whether the marker is there (it
	// sorts first). Not the whole first page: cached, it would answer
	// lookups of names for --negative-ttl from the moment of mounting.
	page, err := f.be.List(ctx, "", "/", "", 1)
	if err == nil && (len(page.Objects) == 0 || page.Objects[0].Key != "") {
		f.rootLoaded.Store(true) // no marker: the defaults
		return
	}
	if _, err := f.headOnce(ctx, ""); err == nil || errors.Is(err, s3backend.ErrNotFound) {
		f.rootLoaded.Store(true)
	}
}

// dirMeta is what is known of a folder's attributes: those not yet written
// to its marker, else the cached ones.
func (f *FS) dirMeta(dirKey string) cache.Meta {
	if m, ok := f.pendingMarker(dirKey); ok {
		return m
	}
	m, _ := f.cache.Known(dirKey)
	return m
}

// Setattr on a directory shows the new attributes at once and stores them
// in its marker later (one PUT for any number of changes in a row; an
// implicit directory gains a marker).
func (d *Dir) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if d.fsys.opts.ReadOnly {
		return syscall.EROFS
	}
	dirKey, ok := d.key()
	if !ok {
		return syscall.ENOENT
	}
	m := applySetattr(d.fsys.dirMeta(dirKey), in, syscall.S_IFDIR)
	switch {
	case dirKey != "" || d.fsys.opts.PrefixRoot:
		// A prefix mount's root has a marker of its own: the prefix's,
		// "clients/acme/" (the key "" here).
		d.fsys.markLater(dirKey, m)
	default:
		// A bucket's root has no key to carry attributes: they live in
		// the metadata store of this cache directory alone.
		d.fsys.cache.Put(dirKey, m)
	}
	d.fsys.attrFor(m, syscall.S_IFDIR, &out.Attr)
	return 0
}

// writeMarker PUTs the zero-byte "dir/" object with m's attributes.
func (f *FS) writeMarker(ctx context.Context, dirKey string, m cache.Meta) syscall.Errno {
	opts := s3backend.PutOptions{ContentType: dirContentType, Metadata: encodeMeta(m)}
	info, err := f.be.Upload(ctx, dirKey, strings.NewReader(""), 0, opts)
	if err != nil {
		return toErrno(f.log, "mkdir", dirKey, err)
	}
	m.ETag, m.Size = info.ETag, 0
	f.clock.tick(dirKey)
	f.clock.tickKey(dirKey)
	f.cache.Put(dirKey, m)
	if l, _ := f.cache.Listing(dirKey); l != nil {
		l.SetMarker(true)
	}
	// A listing of the parent taken before the marker existed would hide
	// the folder now that it is no longer pending.
	if parent, name := splitKey(strings.TrimSuffix(dirKey, "/")); name != "" {
		if l, _ := f.cache.Listing(parent); l != nil {
			l.Set(cache.Entry{Name: name, Dir: true})
		}
	}
	return 0
}

// applySetattr returns m with the attribute changes in requested. Size is
// handled by the caller.
func applySetattr(m cache.Meta, in *fuse.SetAttrIn, fileType uint32) cache.Meta {
	if mode, ok := in.GetMode(); ok {
		m.Mode = fileType | mode&0o7777
	}
	if in.Valid&fuse.FATTR_KILL_SUIDGID != 0 && fileType != syscall.S_IFDIR {
		// A chown or truncate the kernel leaves to us (HANDLE_KILLPRIV_V2):
		// set-user-ID goes, and set-group-ID where it means "execute as".
		m.Mode &^= syscall.S_ISUID
		if m.Mode&syscall.S_IXGRP != 0 {
			m.Mode &^= syscall.S_ISGID
		}
	}
	if uid, ok := in.GetUID(); ok {
		m.UID, m.HasUID = uid, true
	}
	if gid, ok := in.GetGID(); ok {
		m.GID, m.HasGID = gid, true
	}
	if mtime, ok := in.GetMTime(); ok {
		m.Mtime = mtime
	}
	if atime, ok := in.GetATime(); ok {
		m.Atime = atime
	}
	if in.Valid&(fuse.FATTR_MODE|fuse.FATTR_UID|fuse.FATTR_GID|fuse.FATTR_MTIME|fuse.FATTR_ATIME|fuse.FATTR_SIZE|fuse.FATTR_KILL_SUIDGID) != 0 {
		m.Ctime = time.Now() // every change of attributes, as stat(2) counts them
	}
	return m
}

// settled reports whether a forgotten file's changes were just stored.
func settled(found bool, errno syscall.Errno) bool { return found && errno == 0 }

// ownedBy gives m the owner of the process creating it (ctx's caller), as
// a local disk does, storing uid and gid only where they differ from the
// mount's --uid and --gid: a single-user mount sends nothing new.
func (f *FS) ownedBy(ctx context.Context, m cache.Meta) cache.Meta {
	caller, ok := fuse.FromContext(ctx)
	if !ok {
		return m
	}
	if caller.Uid != f.opts.UID {
		m.UID, m.HasUID = caller.Uid, true
	}
	if caller.Gid != f.opts.GID {
		m.GID, m.HasGID = caller.Gid, true
	}
	return m
}

// newEntry checks that name may be created here and returns the
// directory's key and the new entry's key.
func (d *Dir) newEntry(name string, dir bool) (dirKey, key string, errno syscall.Errno) {
	if d.fsys.opts.ReadOnly {
		return "", "", syscall.EROFS
	}
	dirKey, ok := d.key()
	if !ok {
		return "", "", syscall.ENOENT
	}
	if errno := d.fsys.checkName(dirKey, name, dir); errno != 0 {
		return "", "", errno
	}
	return dirKey, childKey(dirKey, name), 0
}

func (d *Dir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	dirKey, key, errno := d.newEntry(name, true)
	if errno != 0 {
		return nil, errno
	}
	m := d.fsys.ownedBy(ctx, cache.Meta{Mode: syscall.S_IFDIR | mode&0o7777, Mtime: time.Now()})
	d.fsys.markLater(key+"/", m) // ticks dirKey's clock
	d.fsys.clock.tick(key + "/")
	d.fsys.cache.ClearNegative(key)
	// Known empty, and without a marker until markLater writes it.
	d.fsys.cache.PutListing(key+"/", cache.NewListing(nil, false, d.fsys.cache.Now()))
	if l, _ := d.fsys.cache.Listing(dirKey); l != nil {
		l.Set(cache.Entry{Name: name, Dir: true})
	}
	d.fsys.attrFor(m, syscall.S_IFDIR, &out.Attr)
	return d.NewInode(ctx, &Dir{fsys: d.fsys}, d.fsys.stable(syscall.S_IFDIR)), 0
}

// Rmdir costs one LIST (is it empty?) and one DELETE of the marker, or
// nothing but a share of a batch when the folder's fresh listing is empty.
func (d *Dir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if d.fsys.opts.ReadOnly {
		return syscall.EROFS
	}
	dirKey, ok := d.key()
	if !ok {
		return syscall.ENOENT
	}
	key := childKey(dirKey, name) + "/"
	if ch := d.GetChild(name); ch != nil {
		for _, gc := range ch.Children() {
			if file, ok := gc.Operations().(*File); ok && file.isLocal() {
				return syscall.ENOTEMPTY
			}
		}
	}
	if len(d.fsys.pendingIn(key)) > 0 {
		return syscall.ENOTEMPTY // a subfolder only this mount knows yet
	}
	if d.fsys.dirtyUnder(key) {
		// A file whose upload waits, which the kernel may have forgotten
		// (no child of the folder's inode then): it lands in the folder.
		return syscall.ENOTEMPTY
	}
	if l, fresh := d.fsys.cache.Listing(key); fresh && l.Len() == 0 {
		// Listed within the TTL and emptied by this mount (rm -rf): no
		// need to ask S3 again, and the marker joins the batch of its
		// files' deletes. A marker still waiting is never written.
		d.fsys.deletes.RemoveFolder(key, d.fsys.cancelMarker(key).maybeStored || l.HasMarker())
		d.fsys.clock.tick(key)
		d.fsys.cache.Delete(key)
		d.fsys.cache.DropTree(key)
		d.fsys.removed(ctx, dirKey, name)
		return 0
	}
	// Files removed just before go in one batch first, so that the
	// emptiness check sees S3 as it will be.
	if err := d.fsys.deletes.Flush(ctx); err != nil {
		return toErrno(d.fsys.log, "rmdir", key, err)
	}
	page, err := d.fsys.be.List(ctx, key, "", "", 2)
	if err != nil {
		return toErrno(d.fsys.log, "rmdir", key, err)
	}
	hasMarker := false
	for _, o := range page.Objects {
		if o.Key != key {
			return syscall.ENOTEMPTY
		}
		hasMarker = true
	}
	// Empty: a marker still waiting is never written (one on its way
	// while we listed is deleted with the rest).
	cancelled := d.fsys.cancelMarker(key)
	if cancelled.maybeStored {
		hasMarker = true
	}
	if hasMarker {
		if err := d.fsys.be.Delete(ctx, key); err != nil {
			// The folder stays, as rmdir failed: so does a waiting marker.
			d.fsys.restoreMarker(key, cancelled)
			return toErrno(d.fsys.log, "rmdir", key, err)
		}
	}
	d.fsys.clock.tick(key)
	d.fsys.cache.Delete(key)
	d.fsys.cache.DropTree(key)
	d.fsys.removed(ctx, dirKey, name)
	return 0
}

// removed records that name left the directory dirKey. A directory that
// exists only implicitly (no marker) would vanish with its last entry, so
// it gets its marker first: a folder emptied by rm or mv stays a folder, as
// on a local disk.
func (f *FS) removed(ctx context.Context, dirKey, name string) {
	f.clock.tick(dirKey)
	f.cache.SetNegative(childKey(dirKey, name))
	l, _ := f.cache.Listing(dirKey)
	if l == nil {
		return
	}
	if left := l.Remove(name); left == 0 && dirKey != "" && !l.HasMarker() {
		m := f.dirMeta(dirKey)
		if m.Mtime.IsZero() {
			m.Mtime = time.Now()
		}
		// Later, like any folder attribute: rm -rf removes the folder
		// right after, and then it costs nothing.
		f.markLater(dirKey, m)
	}
}

func (d *Dir) Unlink(ctx context.Context, name string) syscall.Errno {
	if d.fsys.opts.ReadOnly {
		return syscall.EROFS
	}
	dirKey, ok := d.key()
	if !ok {
		return syscall.ENOENT
	}
	key := childKey(dirKey, name)
	var stored replaced
	if ch := d.GetChild(name); ch != nil {
		switch n := ch.Operations().(type) {
		case *File:
			var inS3 bool
			if stored, inS3 = n.unlink(ctx, key); !inS3 {
				// Never uploaded: nothing to delete in S3.
				d.fsys.clock.tick(dirKey)
				d.fsys.cache.SetNegative(key)
				return 0
			}
		case *Symlink:
			stored.etag = n.etag()
		}
	}
	if m, ok := d.fsys.cache.Known(key); ok && stored.etag == "" {
		stored.etag = m.ETag
	}
	// Sent in a batch with the next removals (within deleteDelay), and
	// only if S3 still holds the version this mount showed; gone for this
	// mount at once.
	d.fsys.deletes.DeleteLater(key, stored.etag, stored.maybe...)
	d.fsys.clock.tick(dirKey)
	d.fsys.cache.Delete(key)
	d.fsys.forgetData(key)
	d.fsys.removed(ctx, dirKey, name)
	return 0
}

func (d *Dir) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	dirKey, key, errno := d.newEntry(name, false)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	file, errno := d.fsys.newLocalFile(ctx, key, mode)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	d.fsys.clock.tick(dirKey)
	d.fsys.cache.ClearNegative(key)
	file.fillAttr(&out.Attr)
	inode := d.NewInode(ctx, file, d.fsys.stable(syscall.S_IFREG))
	h := file.open(ctx, flags)
	h.wrote.Store(true) // created: its close uploads it, even empty
	return inode, h, d.fsys.openFlags(flags, true), 0
}

// Mknod makes regular files (some programs create files with it), and
// FIFOs, sockets and device nodes: zero-byte objects whose mode carries
// the type, and whose x-amz-meta-rdev the device number, as s3fs stores
// them. The kernel gives them their local meaning (a pipe, a socket, the
// device): opening one never reaches the drive.
func (d *Dir) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
		return d.mknodSpecial(ctx, name, mode, dev, out)
	case syscall.S_IFREG, 0:
	default:
		return nil, syscall.EINVAL
	}
	inode, fh, _, errno := d.Create(ctx, name, syscall.O_WRONLY, mode, out)
	if errno != 0 {
		return nil, errno
	}
	h := fh.(*handle)
	if errno := h.Flush(ctx); errno != 0 {
		return nil, errno
	}
	h.Release(ctx)
	return inode, 0
}

func (d *Dir) mknodSpecial(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	_, key, errno := d.newEntry(name, false)
	if errno != 0 {
		return nil, errno
	}
	m := d.fsys.ownedBy(ctx, cache.Meta{Mode: mode&syscall.S_IFMT | mode&0o7777, Mtime: time.Now()})
	if t := mode & syscall.S_IFMT; t == syscall.S_IFCHR || t == syscall.S_IFBLK {
		m.Extra = map[string]string{metaRdev: strconv.FormatUint(uint64(dev), 10)}
	}
	cond := s3backend.Conditions{IfNoneMatch: !d.fsys.opts.Overwrite}
	info, err := d.fsys.be.Upload(ctx, key, strings.NewReader(""), 0,
		s3backend.PutOptions{ContentType: "application/octet-stream", Metadata: encodeMeta(m), Cond: cond})
	if errors.Is(err, s3backend.ErrPrecondition) {
		return nil, syscall.EEXIST // made elsewhere a moment ago
	}
	if err != nil {
		return nil, toErrno(d.fsys.log, "mknod", key, err)
	}
	m.ETag, m.LastModified = info.ETag, info.LastModified
	d.fsys.recordUpload(key, m)
	d.fsys.cache.ClearNegative(key)
	file := &File{fsys: d.fsys, meta: m}
	file.fillAttr(&out.Attr)
	return d.NewInode(ctx, file, d.fsys.stable(fileType(m))), 0
}

func (d *Dir) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	_, key, errno := d.newEntry(name, false)
	if errno != 0 {
		return nil, errno
	}
	m := d.fsys.ownedBy(ctx, cache.Meta{Mode: syscall.S_IFLNK | 0o777, Mtime: time.Now(), Target: target, IsSymlnk: true})
	info, err := d.fsys.be.Upload(ctx, key, strings.NewReader(target), int64(len(target)),
		s3backend.PutOptions{ContentType: "text/plain", Metadata: encodeMeta(m)})
	if err != nil {
		return nil, toErrno(d.fsys.log, "symlink", key, err)
	}
	m.Size, m.ETag = info.Size, info.ETag
	d.fsys.recordUpload(key, m)
	d.fsys.attrFor(m, syscall.S_IFLNK, &out.Attr)
	return d.NewInode(ctx, &Symlink{fsys: d.fsys, meta: m}, d.fsys.stable(syscall.S_IFLNK)), 0
}

// recordUpload remembers an object this mount just wrote, in the metadata
// cache and in its directory's listing, so it never needs a HEAD.
func (f *FS) recordUpload(key string, m cache.Meta) {
	f.clock.tickKey(key)
	f.cache.Put(key, m)
	dirKey, name := splitKey(key)
	if l, _ := f.cache.Listing(dirKey); l != nil {
		l.Set(cache.Entry{Name: name, Observed: cache.Observed{Size: m.Size, ETag: m.ETag, LastModified: m.LastModified}})
	}
	f.landedKeys.add(dirKey, name, f.cache.Now())
}

// Link fails: S3 has no hard links. EPERM is what link(2) documents for a
// filesystem that does not support them.
func (d *Dir) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

// Fsync of a folder makes its entries durable, as fsync(2) of a directory
// does on a local disk: folder markers still waiting and removals still
// queued for their batch go now.
func (d *Dir) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	return toErrno(d.fsys.log, "fsync", "", d.fsys.sendWaiting(ctx))
}

// Statfs reports a practically unlimited drive, as S3 has no quota to show.
func (d *Dir) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	const blocks = 1 << 40 // 4 PiB in 4 KiB blocks
	out.Bsize, out.Frsize = 4096, 4096
	out.Blocks, out.Bfree, out.Bavail = blocks, blocks, blocks
	out.Files, out.Ffree = 1<<40, 1<<40
	out.NameLen = 255
	return 0
}

// statsXattr on the root reports the request counters as JSON.
const statsXattr = "user.s3drive.stats"

func (d *Dir) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if attr != statsXattr || !d.IsRoot() {
		return 0, syscall.ENODATA
	}
	v := d.fsys.Stats()
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}
