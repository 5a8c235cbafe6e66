package fs

import (
	"os"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Data written through the drive would otherwise sit in memory twice: in
// the kernel's page cache of the mounted file and in that of the staging
// file. The upload reads it once from the staging file and never again, so
// both copies only take memory from everything else on the machine (and,
// in a VM that returns free memory to its host, apparently slow down every
// later allocation: 1 GiB written with dd took 4.0-4.9 s with both copies,
// 2.1-2.3 s without; the raw upload 1.6-1.7 s).

// openFlags are the FUSE open flags of a new handle; fromEmpty: the file
// is new or truncated by this open. A writer's handle bypasses the
// kernel's page cache (direct I/O), and the kernel invalidates the pages
// other handles cached for each range written, as it does for a local
// file's O_DIRECT writes. Writers are the write-only handles (cp, dd,
// rsync, tar), which nothing can read through, and the read-write ones
// that start an empty file (Go's os.Create, fopen "w+"): what they read
// back comes from the staging file. The latter only where the kernel maps
// files in direct I/O, so that mmap keeps working.
func (f *FS) openFlags(flags uint32, fromEmpty bool) uint32 {
	switch flags & syscall.O_ACCMODE {
	case syscall.O_WRONLY:
		return fuse.FOPEN_DIRECT_IO
	case syscall.O_RDWR:
		if fromEmpty && f.directMmap.Load() {
			return fuse.FOPEN_DIRECT_IO
		}
	}
	return 0
}

// evictWritten writes n bytes of f from off back to disk and drops them
// from the page cache: for a range of a staging file already uploaded,
// which stays on disk (the data cache may keep the file) but need not stay
// in memory. It is safe at any time: it never discards data, and a file
// closed meanwhile is left alone.
func evictWritten(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		// Dirty pages cannot be dropped: write them back first.
		unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		unix.Fadvise(int(fd), off, n, unix.FADV_DONTNEED)
	})
}
