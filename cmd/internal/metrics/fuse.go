package metrics

import (
	"github.com/hanwen/go-fuse/v2/fuse"
)

// CountFUSE returns raw with each request from the kernel counted by
// operation. Operations not listed here (locks, ioctl, polls) pass
// uncounted.
func (m *Metrics) CountFUSE(raw fuse.RawFileSystem) fuse.RawFileSystem {
	c := &countingFS{RawFileSystem: raw, ops: map[string]counter{}}
	for _, op := range fuseOps {
		c.ops[op] = m.fuseOps.WithLabelValues(op)
	}
	return c
}

var fuseOps = []string{"lookup", "getattr", "setattr", "mknod", "mkdir", "unlink", "rmdir", "rename", "link",
	"symlink", "readlink", "access", "getxattr", "listxattr", "setxattr", "removexattr", "create", "open",
	"read", "write", "flush", "fsync", "release", "fallocate", "copy_file_range", "lseek", "opendir",
	"readdir", "readdirplus", "releasedir", "fsyncdir", "statfs"}

type counter interface{ Inc() }

type countingFS struct {
	fuse.RawFileSystem
	ops map[string]counter
}

func (c *countingFS) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	c.ops["lookup"].Inc()
	return c.RawFileSystem.Lookup(cancel, h, name, out)
}

func (c *countingFS) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	c.ops["getattr"].Inc()
	return c.RawFileSystem.GetAttr(cancel, in, out)
}

func (c *countingFS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	c.ops["setattr"].Inc()
	return c.RawFileSystem.SetAttr(cancel, in, out)
}

func (c *countingFS) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	c.ops["mknod"].Inc()
	return c.RawFileSystem.Mknod(cancel, in, name, out)
}

func (c *countingFS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	c.ops["mkdir"].Inc()
	return c.RawFileSystem.Mkdir(cancel, in, name, out)
}

func (c *countingFS) Unlink(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	c.ops["unlink"].Inc()
	return c.RawFileSystem.Unlink(cancel, h, name)
}

func (c *countingFS) Rmdir(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	c.ops["rmdir"].Inc()
	return c.RawFileSystem.Rmdir(cancel, h, name)
}

func (c *countingFS) Rename(cancel <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	c.ops["rename"].Inc()
	return c.RawFileSystem.Rename(cancel, in, oldName, newName)
}

func (c *countingFS) Link(cancel <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	c.ops["link"].Inc()
	return c.RawFileSystem.Link(cancel, in, name, out)
}

func (c *countingFS) Symlink(cancel <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	c.ops["symlink"].Inc()
	return c.RawFileSystem.Symlink(cancel, h, target, name, out)
}

func (c *countingFS) Readlink(cancel <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	c.ops["readlink"].Inc()
	return c.RawFileSystem.Readlink(cancel, h)
}

func (c *countingFS) Access(cancel <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	c.ops["access"].Inc()
	return c.RawFileSystem.Access(cancel, in)
}

func (c *countingFS) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	c.ops["getxattr"].Inc()
	return c.RawFileSystem.GetXAttr(cancel, h, attr, dest)
}

func (c *countingFS) ListXAttr(cancel <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	c.ops["listxattr"].Inc()
	return c.RawFileSystem.ListXAttr(cancel, h, dest)
}

func (c *countingFS) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	c.ops["setxattr"].Inc()
	return c.RawFileSystem.SetXAttr(cancel, in, attr, data)
}

func (c *countingFS) RemoveXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string) fuse.Status {
	c.ops["removexattr"].Inc()
	return c.RawFileSystem.RemoveXAttr(cancel, h, attr)
}

func (c *countingFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	c.ops["create"].Inc()
	return c.RawFileSystem.Create(cancel, in, name, out)
}

func (c *countingFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	c.ops["open"].Inc()
	return c.RawFileSystem.Open(cancel, in, out)
}

func (c *countingFS) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	c.ops["read"].Inc()
	return c.RawFileSystem.Read(cancel, in, buf)
}

// Writev is what go-fuse calls for every WRITE (Write only if Writev
// answers ENOSYS), so writes are counted here.
func (c *countingFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	c.ops["write"].Inc()
	return c.RawFileSystem.Writev(cancel, in, data)
}

func (c *countingFS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	c.ops["flush"].Inc()
	return c.RawFileSystem.Flush(cancel, in)
}

func (c *countingFS) Fsync(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	c.ops["fsync"].Inc()
	return c.RawFileSystem.Fsync(cancel, in)
}

func (c *countingFS) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	c.ops["release"].Inc()
	c.RawFileSystem.Release(cancel, in)
}

func (c *countingFS) Fallocate(cancel <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	c.ops["fallocate"].Inc()
	return c.RawFileSystem.Fallocate(cancel, in)
}

func (c *countingFS) CopyFileRange(cancel <-chan struct{}, in *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	c.ops["copy_file_range"].Inc()
	return c.RawFileSystem.CopyFileRange(cancel, in)
}

func (c *countingFS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	c.ops["lseek"].Inc()
	return c.RawFileSystem.Lseek(cancel, in, out)
}

func (c *countingFS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	c.ops["opendir"].Inc()
	return c.RawFileSystem.OpenDir(cancel, in, out)
}

func (c *countingFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	c.ops["readdir"].Inc()
	return c.RawFileSystem.ReadDir(cancel, in, out)
}

func (c *countingFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	c.ops["readdirplus"].Inc()
	return c.RawFileSystem.ReadDirPlus(cancel, in, out)
}

func (c *countingFS) ReleaseDir(in *fuse.ReleaseIn) {
	c.ops["releasedir"].Inc()
	c.RawFileSystem.ReleaseDir(in)
}

func (c *countingFS) FsyncDir(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	c.ops["fsyncdir"].Inc()
	return c.RawFileSystem.FsyncDir(cancel, in)
}

func (c *countingFS) StatFs(cancel <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	c.ops["statfs"].Inc()
	return c.RawFileSystem.StatFs(cancel, h, out)
}
