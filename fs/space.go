package fs

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Staged writes come before cached reads on the cache disk. A write that
// finds the disk full first takes space back from the data cache; a file
// being streamed up then frees the parts S3 has confirmed (punching them
// out of the staging file), so that a sequential copy larger than the free
// space still succeeds. Such a file can no longer be read back, rewritten
// below that point, or uploaded again by a next run until it is closed.

// createStage creates an empty staging file.
func (f *FS) createStage() (*os.File, error) {
	st, err := os.CreateTemp(f.opts.StagingDir, "stage-*")
	if errors.Is(err, syscall.ENOSPC) && f.makeRoom(1<<20, nil) {
		st, err = os.CreateTemp(f.opts.StagingDir, "stage-*")
	}
	return st, err
}

// makeRoom takes about need bytes back from the data cache; it reports
// whether it freed any. Under write-back, closed files waiting for their
// upload hold disk too: with the data cache empty, one of them (not the
// writer's own, except) is uploaded now, and then leaves the disk or joins
// the data cache, whence the next call takes it back. The writer waits for
// it, which is the back-pressure a full disk needs.
func (f *FS) makeRoom(need int64, except *File) bool {
	if f.data != nil && f.data.Release(max(need, 1<<20)) > 0 {
		return true
	}
	return f.opts.WriteBack && f.uploadWaiting(except)
}

// writeStageLocked writes data at off into the staging file, making room
// when the disk is full. The caller holds ioMu and mu.
func (f *File) writeStageLocked(data []byte, off int64) (int, error) {
	n, err := f.stage.WriteAt(data, off)
	for errors.Is(err, syscall.ENOSPC) {
		if !f.fsys.makeRoom(int64(len(data)-n), f) && !f.releaseSentLocked() {
			break
		}
		var more int
		more, err = f.stage.WriteAt(data[n:], off+int64(n))
		n += more
	}
	return n, err
}

// releaseSentLocked punches the parts S3 confirmed out of the staging
// file, waiting for a part in flight if none is confirmed yet; it reports
// whether it freed anything. The caller holds ioMu and mu; mu is let go
// while it waits.
func (f *File) releaseSentLocked() bool {
	s := f.stream
	for s != nil {
		acked, waiting := s.confirmed()
		if acked > f.released {
			if err := unix.Fallocate(int(f.stage.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE,
				f.released, acked-f.released); err != nil {
				f.fsys.log.Warn("could not free uploaded parts of a staging file", "staging", f.stage.Name(), "err", err)
				return false
			}
			if f.released == 0 {
				f.fsys.log.Warn("cache disk full: freeing the parts of a file already uploaded; it cannot be read back until closed",
					"staging", f.stage.Name())
			}
			f.released = acked
			return true
		}
		if !waiting {
			return false
		}
		f.mu.Unlock()
		<-s.progress
		f.mu.Lock()
		if f.stream != s {
			return false
		}
	}
	return false
}
