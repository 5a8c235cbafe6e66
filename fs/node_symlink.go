package fs

import (
	"context"
	"io"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/s3drive/s3drive/cache"
	"github.com/s3drive/s3drive/s3backend"
)

// Symlink is an object stored the s3fs way: mode S_IFLNK in metadata, the
// target as its body.
type Symlink struct {
	fs.Inode
	fsys *FS

	mu   sync.Mutex // protects meta
	meta cache.Meta
}

// OnForget: the kernel forgot the link (see inodes.go).
func (l *Symlink) OnForget() { l.fsys.inodes.forgotten(l.EmbeddedInode()) }

var (
	_ = (fs.NodeReadlinker)((*Symlink)(nil))
	_ = (fs.NodeGetattrer)((*Symlink)(nil))
)

func (l *Symlink) setMeta(m cache.Meta) {
	l.mu.Lock()
	if m.Target == "" && m.ETag == l.meta.ETag {
		m.Target = l.meta.Target
	}
	l.meta = m
	l.mu.Unlock()
}

func (l *Symlink) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	l.mu.Lock()
	m := l.meta
	l.mu.Unlock()
	l.fsys.attrFor(m, syscall.S_IFLNK, &out.Attr)
	return 0
}

// Readlink costs one GET the first time; the target is then cached with
// the rest of the metadata.
func (l *Symlink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.meta.Target != "" {
		return []byte(l.meta.Target), 0
	}
	key, ok := pathOf(l.fsys.rootInode(), l.EmbeddedInode())
	if !ok {
		return nil, syscall.ENOENT
	}
	rc, err := l.fsys.be.Get(ctx, key, 0, 4096, "")
	if err != nil {
		return nil, toErrno(l.fsys.log, "readlink", key, err)
	}
	defer rc.Close()
	target, err := io.ReadAll(rc)
	if err != nil {
		return nil, toErrno(l.fsys.log, "readlink", key, err)
	}
	l.meta.Target = string(target)
	l.fsys.cache.Put(key, l.meta)
	return target, 0
}

var _ = (fs.NodeSetattrer)((*Symlink)(nil))

// Setattr stores a symlink's times and owner (lutimes, lchown: rsync -a sets
// them) with one self-copy; its mode is always 0777.
func (l *Symlink) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if l.fsys.opts.ReadOnly {
		return syscall.EROFS
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	m := applySetattr(l.meta, in, syscall.S_IFLNK)
	m.Mode = syscall.S_IFLNK | 0o777
	if !sameAttrs(m, l.meta) {
		key, ok := pathOf(l.fsys.rootInode(), l.EmbeddedInode())
		if !ok {
			return syscall.ENOENT
		}
		info, err := l.fsys.be.Copy(ctx, key, key, m.Size,
			&s3backend.PutOptions{ContentType: "text/plain", Metadata: encodeMeta(m)}, s3backend.Conditions{})
		if err != nil {
			return toErrno(l.fsys.log, "setattr", key, err)
		}
		m.ETag, m.LastModified = info.ETag, info.LastModified
		l.fsys.recordUpload(key, m)
		l.meta = m
	}
	l.fsys.attrFor(l.meta, syscall.S_IFLNK, &out.Attr)
	return 0
}
