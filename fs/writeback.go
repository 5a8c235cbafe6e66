package fs

import (
	"context"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Write-back (Options.WriteBack, --write-back): close returns once the
// staged data and its journal entry are durable on local disk (both
// synced), and the upload runs in the background, several files at once,
// each file's uploads in order (its ioMu). fsync still waits for S3. What
// a crash leaves, the next mount's recovery uploads, with the conflict
// rule of conflict.go. Queued bytes are bounded (WriteBackBudget): past it
// or with the staging disk low, a close uploads before it returns, which
// paces the writer to the link.
//
// A queued file is an ordinary file with staged changes and no writer —
// the state a failed upload leaves — so rename, unlink, truncate, fsync
// and unmount already know what to do with it; the queue only decides
// when its upload starts.

// writeBackWorkers is how many files upload at once in the background.
const writeBackWorkers = 16

// writeBackDelay is how long a closed file waits before its upload starts.
// What programs do right after a close then rides with the one upload
// instead of costing requests of its own: rsync's rename of its temporary
// file (a copy and a delete, after waiting for the upload), the times and
// mode cp -p, rsync and file managers set after close (a self-copy).
const writeBackDelay = time.Second

// queuedFile is a closed file waiting for a worker, and when it may go.
type queuedFile struct {
	file *File
	due  time.Time
}

type writeBacks struct {
	mu      sync.Mutex
	ready   sync.Cond    // signalled when queue grows
	queue   []queuedFile // closed files waiting for a worker, first closed first
	queued  map[*File]bool
	started bool
	// full and checked: the last budget count, and when it was made.
	full    bool
	checked time.Time
}

// budgetCheck is how often the queued bytes are counted: a copy of many
// small files closes thousands a second.
const budgetCheck = 100 * time.Millisecond

// writeBack is close(2) under write-back.
func (f *File) writeBack(ctx context.Context) syscall.Errno {
	if f.fsys.writeBackFull() {
		return f.flush(ctx) // back-pressure: this close waits for its upload
	}
	f.ioMu.Lock()
	f.mu.Lock()
	key, ok := f.key()
	dirty := f.dirty
	// A file whose start was released from the disk to make room (a
	// stream's confirmed parts, space.go) is not whole on disk: only its
	// upload can finish it, so its close waits for that, as without
	// write-back.
	released := f.released > 0
	var err error
	if dirty && ok && !released {
		err = f.durableLocked(key)
	}
	f.mu.Unlock()
	f.ioMu.Unlock()
	switch {
	case !dirty:
		return 0
	case ok && !released && err == nil:
		f.fsys.queueWriteBack(f)
		return 0
	case err != nil:
		f.fsys.log.Warn("write-back: staged data not durable on local disk; uploading before close returns", "key", key, "err", err)
	}
	// Unlinked (flush discards it), released, or not durable here: the
	// close waits for S3 as without write-back.
	return f.flush(ctx)
}

func (f *FS) queueWriteBack(file *File) {
	w := &f.writeBacks
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		w.started = true
		w.ready.L = &w.mu
		w.queued = map[*File]bool{}
		for range writeBackWorkers {
			go f.writeBackWorker()
		}
	}
	if w.queued[file] {
		return
	}
	w.queued[file] = true
	w.queue = append(w.queue, queuedFile{file, time.Now().Add(writeBackDelay)})
	w.ready.Signal()
}

func (f *FS) writeBackWorker() {
	w := &f.writeBacks
	for {
		w.mu.Lock()
		for len(w.queue) == 0 {
			w.ready.Wait()
		}
		next := w.queue[0]
		w.queue[0] = queuedFile{}
		w.queue = w.queue[1:]
		w.mu.Unlock()
		// The queue is in closing order, so due times only grow: each
		// worker waits for the one it took.
		time.Sleep(time.Until(next.due))
		file := next.file
		w.mu.Lock()
		delete(w.queued, file) // a close from now on queues it again
		w.mu.Unlock()
		// Reopened for writing: its next close queues it. A failure is
		// left to the retries (upload scheduled one); the data stays
		// durable meanwhile.
		file.uploadClosed(context.Background())
	}
}

// writeBackFull reports whether the files waiting for a background upload
// hold more than the budget.
func (f *FS) writeBackFull() bool {
	if f.stagingDiskLow() {
		return true // asked at every close: a statfs is cheap, and a disk fills fast
	}
	w := &f.writeBacks
	w.mu.Lock()
	if time.Since(w.checked) < budgetCheck {
		full := w.full
		w.mu.Unlock()
		return full
	}
	w.mu.Unlock()
	_, bytes := f.writeBackQueued()
	full := bytes > f.opts.WriteBackBudget
	w.mu.Lock()
	w.full, w.checked = full, time.Now()
	w.mu.Unlock()
	return full
}

// stagingDiskLow reports whether the staging disk's free space is below
// an eighth of it (4 MiB to 2 GiB, as the data cache keeps free): queued
// files hold their staged data until uploaded, and a disk smaller than
// the budget must not fill up with them.
func (f *FS) stagingDiskLow() bool {
	var st unix.Statfs_t
	if err := unix.Statfs(f.opts.StagingDir, &st); err != nil {
		return false
	}
	total := int64(st.Blocks) * st.Bsize
	free := int64(st.Bavail) * st.Bsize
	return free < min(max(total/8, 4<<20), 2<<30)
}

// uploadWaiting uploads one closed file waiting for its upload, other than
// except (whose writer holds its locks), and reports whether it did. A file
// busy elsewhere (its ioMu taken) is passed over rather than waited for.
func (f *FS) uploadWaiting(except *File) bool {
	for _, file := range f.dirtyFiles() {
		if file == except || !file.ioMu.TryLock() {
			continue
		}
		file.mu.Lock()
		waiting := file.dirty && file.writers == 0 && file.stage != nil
		file.mu.Unlock()
		uploaded := waiting && file.upload(context.Background()) == 0
		file.ioMu.Unlock()
		if uploaded {
			return true
		}
	}
	return false
}

// writeBackQueued counts the files closed with changes not in S3 yet, and
// their bytes: queued, or no longer open for writing (a close's release
// may come after the close returned).
func (f *FS) writeBackQueued() (files int, bytes int64) {
	w := &f.writeBacks
	for _, file := range f.dirtyFiles() {
		w.mu.Lock()
		queued := w.queued[file]
		w.mu.Unlock()
		file.mu.Lock()
		if file.dirty && (queued || file.writers == 0) {
			files++
			bytes += file.stageSize
		}
		file.mu.Unlock()
	}
	return files, bytes
}
