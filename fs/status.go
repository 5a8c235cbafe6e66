package fs

import (
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Status is what a mount is doing, for s3drive status: what it holds that
// S3 does not have yet, and how that is going.
type Status struct {
	Online bool `json:"online"` // the server answered its last request
	// Uploads are the files with changes not in S3 yet, by path.
	Uploads []UploadStatus `json:"uploads"`
	// WaitingAttributes are files whose chmod, chown or times wait to be
	// stored (see Options.MetaDelay).
	WaitingAttributes []string `json:"waiting_attributes"`
	// WaitingFolders are new folders whose markers are not written yet.
	WaitingFolders []string `json:"waiting_folders"`
	// QueuedRemovals are removed files whose DeleteObjects is yet to go.
	QueuedRemovals int `json:"queued_removals"`
	// Conflicts counts writes that found their file changed elsewhere
	// (conflict.go); RecentConflicts are the latest of them.
	Conflicts       int64      `json:"conflicts"`
	RecentConflicts []Conflict `json:"recent_conflicts"`
	// DataCacheBytes and DataCacheLimit are the data cache's use and size.
	DataCacheBytes int64 `json:"data_cache_bytes"`
	DataCacheLimit int64 `json:"data_cache_limit"`
	// WriteBack is set when the mount runs with --write-back.
	WriteBack *WriteBackStatus `json:"write_back,omitempty"`
}

// WriteBackStatus is the write-back queue: files closed (their data durable
// on local disk) that S3 does not have yet.
type WriteBackStatus struct {
	Files  int   `json:"files"`
	Bytes  int64 `json:"bytes"`
	Budget int64 `json:"budget"` // past it, a close waits for its own upload
}

// UploadStatus is one file waiting for S3.
type UploadStatus struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Sent is how much of this attempt S3 has read so far.
	Sent int64 `json:"sent"`
	// Writing: a program still has it open for writing (its close uploads).
	Writing   bool      `json:"writing"`
	Uploading bool      `json:"uploading"`
	Retries   int       `json:"retries"` // failed attempts in a row
	LastError string    `json:"last_error,omitempty"`
	NextRetry time.Time `json:"next_retry,omitzero"`
}

// Status reports what the mount holds that S3 does not have yet.
func (f *FS) Status() Status {
	st := Status{Online: !f.be.Offline(), QueuedRemovals: f.deletes.queued(),
		Uploads: []UploadStatus{}, WaitingAttributes: []string{}, WaitingFolders: []string{}}
	for _, file := range f.dirtyFiles() {
		path, ok := file.key()
		if !ok {
			continue
		}
		file.mu.Lock()
		dirty, metaPending := file.dirty, file.metaPending
		up := UploadStatus{Path: path, Size: file.stageSize, Writing: file.writers > 0, Uploading: file.uploading,
			Sent: min(file.sent.Load(), file.stageSize)}
		file.mu.Unlock()
		if !dirty {
			if metaPending {
				st.WaitingAttributes = append(st.WaitingAttributes, path)
			}
			continue
		}
		if r, failed := f.retryOf(file); failed {
			up.Retries, up.NextRetry = r.tries, r.next
			if r.lastErr != nil {
				up.LastError = r.lastErr.Error()
			}
		}
		st.Uploads = append(st.Uploads, up)
	}
	slices.SortFunc(st.Uploads, func(a, b UploadStatus) int { return strings.Compare(a.Path, b.Path) })
	slices.Sort(st.WaitingAttributes)
	f.markers.mu.Lock()
	for key := range f.markers.pending {
		st.WaitingFolders = append(st.WaitingFolders, key)
	}
	f.markers.mu.Unlock()
	slices.Sort(st.WaitingFolders)
	if f.data != nil {
		st.DataCacheBytes, st.DataCacheLimit = f.data.Size(), f.data.Limit()
	}
	if f.opts.WriteBack {
		files, bytes := f.writeBackQueued()
		st.WriteBack = &WriteBackStatus{Files: files, Bytes: bytes, Budget: f.opts.WriteBackBudget}
	}
	st.Conflicts, st.RecentConflicts = f.Conflicts()
	if st.RecentConflicts == nil {
		st.RecentConflicts = []Conflict{}
	}
	return st
}

// countingReaderAt counts the bytes an upload reads from a staging file:
// the progress s3drive status shows.
type countingReaderAt struct {
	r io.ReaderAt
	n *atomic.Int64
}

func (c countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// PendingBytes is the size of the files whose changes are not in S3 yet.
func (f *FS) PendingBytes() int64 {
	var n int64
	for _, file := range f.dirtyFiles() {
		file.mu.Lock()
		if file.dirty {
			n += file.stageSize
		}
		file.mu.Unlock()
	}
	return n
}

// UploadFailures counts the uploads that failed and were left to retry.
func (f *FS) UploadFailures() int64 { return f.retries.failures.Load() }
