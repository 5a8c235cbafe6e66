package fs

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/s3drive/s3drive/cache"
	"github.com/s3drive/s3drive/s3backend"
)

// Rename moves a file with CopyObject + DeleteObject, and a folder by
// copying every key under it in parallel (bounded), then deleting the old
// keys in batches. A folder move is not atomic: a failure part way leaves
// the source complete and a partial copy. See docs/SEMANTICS.md.
func (d *Dir) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if d.fsys.opts.ReadOnly {
		return syscall.EROFS
	}
	if flags&^renameNoReplace != 0 {
		return syscall.EINVAL // RENAME_EXCHANGE and whiteouts cannot be done on S3
	}
	dst, ok := newParent.(*Dir)
	if !ok {
		return syscall.EXDEV
	}
	srcDir, ok1 := d.key()
	dstDir, ok2 := dst.key()
	if !ok1 || !ok2 {
		return syscall.ENOENT
	}
	srcKey, dstKey := childKey(srcDir, name), childKey(dstDir, newName)
	if srcKey == dstKey {
		return 0
	}
	if flags&renameNoReplace != 0 {
		if _, err := d.fsys.resolve(ctx, dstDir, newName); err == nil {
			return syscall.EEXIST
		}
	}
	var ops fs.InodeEmbedder
	if ch := d.GetChild(name); ch != nil {
		ops = ch.Operations()
	} else {
		res, err := d.fsys.resolve(ctx, srcDir, name)
		if err != nil {
			return toErrno(d.fsys.log, "rename", srcKey, err)
		}
		ops = d.child(ctx, srcDir, name, res, new(fuse.Attr)).Operations()
	}
	_, isDir := ops.(*Dir)
	if errno := d.fsys.checkName(dstDir, newName, isDir); errno != 0 {
		return errno
	}
	// victim is the object the move replaces: the kernel looked the
	// destination up first, so an object there has an inode.
	var (
		victim     replaced
		victimFile *File
	)
	if in := dst.GetChild(newName); in != nil && in.Operations() != ops {
		switch v := in.Operations().(type) {
		case *File:
			// The file replaced: an upload of it in flight finishes
			// first, and its version is then the one replaced; no other
			// starts until the move is decided. Once moved over, it is
			// unlinked: its descriptors keep reading it, and changes of it
			// not uploaded yet are dropped. A move that fails leaves it
			// whole.
			victimFile = v
			v.ioMu.Lock()
			defer v.ioMu.Unlock()
			victim = v.replacedHeld(ctx, dstKey)
		case *Symlink:
			victim.etag = v.etag()
		}
	}
	var errno syscall.Errno
	entry := cache.Entry{Name: newName}
	switch n := ops.(type) {
	case *Dir:
		entry.Dir = true
		if !d.fsys.movePending(srcKey+"/", dstKey+"/", n) {
			errno = d.fsys.renameDir(ctx, srcKey+"/", dstKey+"/")
		}
	case *File:
		errno = n.rename(ctx, srcKey, dstKey, victim)
	case *Symlink:
		n.mu.Lock()
		errno = d.fsys.moveObject(ctx, srcKey, dstKey, n.meta, nil, victim)
		n.mu.Unlock()
	}
	if errno != 0 {
		if victimFile != nil {
			// Only a copy fails, and one may land without its answer.
			victimFile.moveFailedHeld(dstKey, copiedVersion(ops))
		}
		return errno
	}
	if victimFile != nil {
		victimFile.unlinkHeld(ctx, dstKey)
	}
	d.fsys.cache.ClearNegative(dstKey)
	if m, ok := d.fsys.cache.Known(dstKey); ok && !entry.Dir {
		entry.Observed = cache.Observed{Size: m.Size, ETag: m.ETag, LastModified: m.LastModified}
	}
	if l, _ := d.fsys.cache.Listing(dstDir); l != nil && (entry.Dir || entry.ETag != "") {
		l.Set(entry)
	}
	d.fsys.removed(ctx, srcDir, name)
	return 0
}

// rename moves a file. Staged changes are not uploaded under the old name:
// the old object is deleted and the data goes up once, under the new name,
// at the next Flush (the temp-file-then-rename pattern of editors and rsync).
func (f *File) rename(ctx context.Context, srcKey, dstKey string, victim replaced) syscall.Errno {
	f.ioMu.Lock()
	defer f.ioMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	errno := f.renameLocked(ctx, srcKey, dstKey, victim)
	if errno == 0 {
		// Until go-fuse moves the inode, the tree still says srcKey: an
		// upload retried or queued in the background must not go there.
		f.moving.Store(&[2]string{srcKey, dstKey})
		// Nor, should the kernel forget the file from now on, may its
		// changes go under the key it had last (see key).
		f.lastKey.Store(&dstKey)
	}
	return errno
}

func (f *File) renameLocked(ctx context.Context, srcKey, dstKey string, victim replaced) syscall.Errno {
	switch {
	case f.local:
		f.abandonStreamLocked() // as below
		if f.replaces != "" || len(f.maybeLanded) > 0 {
			// It was moved onto srcKey, over an object not replaced yet,
			// or an upload of it there failed without an answer.
			f.fsys.leftKey(srcKey, f.replaces, f.maybeLanded...)
		}
		f.replaces, f.maybeLanded = victim.etag, slices.Clone(victim.maybe)
		f.rejournalLocked(dstKey)
		return 0
	case f.dirty:
		// The data goes up under the new name at the next Flush. An
		// upload streaming under the old name is abandoned (it starts
		// again under the new one): completed there, it would show the
		// old name to others, and overwrite whatever took that name since.
		f.abandonStreamLocked()
		f.fsys.leftKey(srcKey, f.meta.ETag, f.maybeLanded...)
		f.local, f.replaces, f.maybeLanded = true, victim.etag, slices.Clone(victim.maybe)
		f.rejournalLocked(dstKey)
		return 0
	}
	var replace *s3backend.PutOptions
	if f.metaPending {
		// Attribute changes not yet stored ride along with the copy.
		replace = &s3backend.PutOptions{ContentType: contentType(dstKey), Metadata: encodeMeta(f.meta)}
	}
	if errno := f.fsys.moveObject(ctx, srcKey, dstKey, f.meta, replace, victim); errno != 0 {
		return errno
	}
	f.meta, _ = f.fsys.cache.Known(dstKey)
	f.clearMetaPendingLocked()
	f.settleLocked()
	return 0
}

// copiedVersion is the ETag a copy of the file or symlink's object has
// (a copy of a single-part object keeps its ETag).
func copiedVersion(ops fs.InodeEmbedder) string {
	switch n := ops.(type) {
	case *File:
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.meta.ETag
	case *Symlink:
		return n.etag()
	}
	return ""
}

// replaced is the version of the object a move replaces: etag ("" for a
// name believed free), or one of maybe, versions of the file replaced
// whose upload may have landed without an answer (see maybeLanded). The
// move's write is conditional on etag; refused, it finds which version
// the name holds, and one of maybe is replaced all the same. Deciding
// later rather than with a HEAD at the rename keeps a rename of waiting
// files free of requests, and right while the server is unreachable.
type replaced struct {
	etag  string
	maybe []string
}

// moveObject copies one object and deletes the source (in the next delete
// batch). The copy keeps the source's metadata, or replaces it when
// replace is set.
//
// The copy is conditional on the source being the version m describes and
// on the destination holding victim. A destination written elsewhere
// since keeps that version: the moved file goes to a sibling beside it
// (conflict.go). A source changed elsewhere since is moved as it is now.
func (f *FS) moveObject(ctx context.Context, srcKey, dstKey string, m cache.Meta, replace *s3backend.PutOptions, victim replaced) syscall.Errno {
	cond := s3backend.Conditions{IfMatch: victim.etag, IfNoneMatch: victim.etag == "", SourceIfMatch: m.ETag}
	if f.opts.Overwrite {
		cond = s3backend.Conditions{}
	}
	copyTo := func(ctx context.Context, name string, c s3backend.Conditions) (s3backend.ObjectInfo, error) {
		c.SourceIfMatch = cond.SourceIfMatch
		return f.be.Copy(ctx, srcKey, name, m.Size, replace, c)
	}
	info, err := copyTo(ctx, dstKey, cond)
	if errors.Is(err, s3backend.ErrPrecondition) {
		if cur, herr := f.be.Head(ctx, srcKey); herr == nil && cur.ETag != m.ETag {
			m.ETag, m.Size, cond.SourceIfMatch = cur.ETag, cur.Size, cur.ETag // the source changed: move it as it is
			info, err = copyTo(ctx, dstKey, cond)
		}
	}
	savedAs := dstKey
	if errors.Is(err, s3backend.ErrPrecondition) {
		var earlier func(string) bool
		if len(victim.maybe) > 0 {
			earlier = func(etag string) bool { return slices.Contains(victim.maybe, etag) }
		}
		info, savedAs, err = f.keepBoth(ctx, dstKey, copyTo, copyOf(s3backend.ObjectInfo{ETag: m.ETag, Size: m.Size}), earlier)
	}
	if err != nil {
		return toErrno(f.log, "rename", srcKey, err)
	}
	if savedAs != dstKey {
		// The name keeps the other writer's version; the inode moved
		// there shows it (File.rename reads it from the cache).
		if theirs, herr := f.be.Head(ctx, dstKey); herr == nil {
			f.clock.tickKey(dstKey)
			f.cache.Put(dstKey, decodeMeta(theirs))
		}
		dstKey = savedAs
		f.cache.DropListing(dirOf(dstKey))
	}
	f.leftKey(srcKey, m.ETag)
	m.ETag, m.LastModified = info.ETag, info.LastModified
	f.recordUpload(dstKey, m)
	return 0
}

// leftKey records that this mount's version etag of key (or whichever of
// it and maybe S3 holds) is gone from key: hidden at once, its delete
// queued.
func (f *FS) leftKey(key, etag string, maybe ...string) {
	f.deletes.DeleteLater(key, etag, maybe...)
	f.clock.tickKey(key)
	f.cache.Delete(key)
	f.forgetData(key)
}

// renameDir moves every key under src to dst.
func (f *FS) renameDir(ctx context.Context, src, dst string) syscall.Errno {
	if errno := f.flushUnder(ctx, src); errno != 0 {
		return errno
	}
	if errno := f.flushMarkers(ctx, src); errno != 0 {
		return errno
	}
	if len(f.pendingIn(dst)) > 0 || f.dirtyUnder(dst) {
		return syscall.ENOTEMPTY
	}
	if err := f.deletes.Flush(ctx); err != nil {
		return toErrno(f.log, "rename", src, err)
	}
	page, err := f.be.List(ctx, dst, "", "", 2)
	if err != nil {
		return toErrno(f.log, "rename", dst, err)
	}
	for _, o := range page.Objects {
		if o.Key != dst {
			return syscall.ENOTEMPTY
		}
	}
	// An empty folder being replaced: its marker will be the source's.
	// Only now, so that a move refused before this point leaves it.
	f.cancelMarker(dst)
	var objects []s3backend.ObjectInfo
	token := ""
	for {
		page, err := f.be.List(ctx, src, "", token, 1000)
		if err != nil {
			return toErrno(f.log, "rename", src, err)
		}
		objects = append(objects, page.Objects...)
		if token = page.NextToken; token == "" {
			break
		}
	}
	for _, o := range objects {
		if len(o.Key)-len(src)+len(dst) > f.be.MaxKeyLen() {
			return syscall.ENAMETOOLONG // a key inside would be too long
		}
	}
	if err := f.copyTree(ctx, objects, src, dst); err != nil {
		return toErrno(f.log, "rename", src, err)
	}
	removals := make([]s3backend.Removal, len(objects))
	for i, o := range objects {
		removals[i] = s3backend.Removal{Key: o.Key, ETag: o.ETag}
		if f.opts.Overwrite || strings.HasSuffix(o.Key, "/") {
			removals[i].ETag = "" // markers are written anew, never changed elsewhere in a way that matters
		}
	}
	if len(removals) > 0 {
		kept, err := f.be.Remove(ctx, removals)
		if err != nil {
			return toErrno(f.log, "rename", src, err)
		}
		for _, k := range kept {
			f.log.Warn("moving a folder: a file changed elsewhere during the move stays at its old name (the copy is the version before)", "key", k)
		}
	}
	// S3 has the move: every folder it touched changed.
	for _, o := range objects {
		f.clock.tickKey(o.Key)
		f.clock.tickKey(dst + strings.TrimPrefix(o.Key, src))
		f.cache.Delete(o.Key)
	}
	f.clock.tick(src)
	f.clock.tick(dst)
	f.cache.DropTree(src)
	f.cache.DropTree(dst)
	return 0
}

// dirtyUnder reports whether a file under prefix has changes not in S3
// yet: a folder holding one is not empty, whatever S3 lists.
func (f *FS) dirtyUnder(prefix string) bool {
	for _, file := range f.dirtyFiles() {
		if key, ok := file.key(); ok && strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// flushUnder uploads staged files under prefix before their keys move. A
// file that cannot be stored fails the move: the copy would miss it, and
// a file the kernel forgot would later land under the old name (see key).
func (f *FS) flushUnder(ctx context.Context, prefix string) syscall.Errno {
	for _, file := range f.dirtyFiles() {
		if key, ok := file.key(); ok && strings.HasPrefix(key, prefix) {
			if errno := file.sync(ctx); errno != 0 {
				f.log.Warn("folder move refused: a file in it could not be uploaded first", "key", key, "errno", errno)
				return errno
			}
		}
	}
	return 0
}

// renameNoReplace is renameat2's RENAME_NOREPLACE (go-fuse names only
// RENAME_EXCHANGE).
const renameNoReplace = 0x1

// copyTree copies objects from under src to under dst, carrying their cached
// metadata along. Folder markers go first, a level of the tree at a time
// (parents before children), and are written anew rather than copied:
// servers that store folders as directories, such as versitygw, refuse
// CopyObject on them. Files then go. Everything runs CopyConcurrency at a
// time. On failure the copies made so far are deleted, so a failed folder
// move leaves the source as it was and no partial destination.
func (f *FS) copyTree(ctx context.Context, objects []s3backend.ObjectInfo, src, dst string) error {
	var (
		mu       sync.Mutex // protects copied and firstErr
		copied   []string
		firstErr error
	)
	copyOne := func(o s3backend.ObjectInfo) error {
		newKey := dst + strings.TrimPrefix(o.Key, src)
		var info s3backend.ObjectInfo
		var err error
		if strings.HasSuffix(o.Key, "/") {
			err = f.copyMarker(ctx, o.Key, newKey)
		} else {
			info, err = f.be.Copy(ctx, o.Key, newKey, o.Size, nil, s3backend.Conditions{})
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return err
		}
		copied = append(copied, newKey)
		if m, ok := f.cache.Known(o.Key); ok && !strings.HasSuffix(o.Key, "/") {
			m.ETag, m.LastModified = info.ETag, info.LastModified
			f.cache.Put(newKey, m)
		}
		return nil
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	// Markers level by level (parents before children, a level at once),
	// then every file.
	levels := map[int][]s3backend.ObjectInfo{}
	var files []s3backend.ObjectInfo
	for _, o := range objects {
		if strings.HasSuffix(o.Key, "/") {
			depth := strings.Count(o.Key, "/")
			levels[depth] = append(levels[depth], o)
		} else {
			files = append(files, o)
		}
	}
	depths := slices.Sorted(maps.Keys(levels))
	copyAll := func(batch []s3backend.ObjectInfo) {
		parallel(f.opts.CopyConcurrency, batch, failed, func(o s3backend.ObjectInfo) { copyOne(o) })
	}
	for _, d := range depths {
		copyAll(levels[d])
	}
	copyAll(files)
	if firstErr == nil {
		return nil
	}
	if len(copied) > 0 {
		if err := f.be.Delete(context.WithoutCancel(ctx), copied...); err != nil {
			f.log.Error("folder move failed and its partial copy could not be removed", "dst", dst, "err", err)
		}
		for _, k := range copied {
			f.cache.Delete(k)
		}
	}
	return firstErr
}

// copyMarker writes the folder marker dst with src's attributes (from the
// cache, else one HEAD).
func (f *FS) copyMarker(ctx context.Context, src, dst string) error {
	m, ok := f.cache.Known(src)
	if !ok {
		info, err := f.be.Head(ctx, src)
		if err != nil {
			return err
		}
		m = decodeMeta(info)
	}
	if errno := f.writeMarker(ctx, dst, m); errno != 0 {
		return errno
	}
	return nil
}
