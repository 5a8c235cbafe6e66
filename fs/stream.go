package fs

import (
	"context"
	"errors"
	"maps"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/s3drive/s3drive/cache"
	"github.com/s3drive/s3drive/s3backend"
)

// maxParts is S3's limit on parts in one multipart upload.
const maxParts = 10000

// errTooManyParts ends a stream whose file outgrew maxParts parts; the
// whole upload that follows picks larger parts.
var errTooManyParts = errors.New("file too large to stream at this part size")

// stream uploads a file while it is being written: each time the staging
// file holds a whole part beyond what was sent, that part goes up, so a
// large copy shows progress that is real and close waits only for the tail.
// Bytes below sent are in S3-bound parts and must not change; a write there
// abandons the stream and the file is uploaded whole at close instead.
type stream struct {
	mp    s3backend.Multipart
	key   string
	inode *fs.Inode  // the file's, whose pages the kernel drops once sent
	meta  cache.Meta // the attributes the upload was started with
	sent  int64
	next  int32 // the next part's number
	// slots bounds parts in flight; a writer waits for one, which paces
	// the copy to the upload.
	slots chan struct{}
	wg    sync.WaitGroup

	// progress receives a value each time a part ends.
	progress chan struct{}

	mu  sync.Mutex // protects the following
	err error
	// acked is how many bytes from the start S3 confirmed; done holds the
	// sizes of parts confirmed beyond it, by number.
	acked     int64
	ackedNext int32
	done      map[int32]int64
	inFlight  int
	// failed are parts to send again: with bytes released from the
	// staging file the upload cannot start over, so it is kept.
	failed []part
}

// streamMeta is the metadata a streamed upload starts with. The time of
// the last write is not known yet: it is left out, and S3's LastModified
// (the upload's completion) stands for it.
func streamMeta(m cache.Meta) cache.Meta {
	m.Mtime = time.Time{}
	m.Extra = maps.Clone(m.Extra)
	return m
}

// part is one range of the staging file to send.
type part struct {
	num       int32
	off, size int64
	// evict drops the range from memory once sent: set for the parts sent
	// while the file is written, not for the tail, which close waits for.
	evict bool
}

// duePartsLocked returns the whole parts the staging file holds beyond what
// was sent and marks them sent. The caller holds f.mu.
func (s *stream) duePartsLocked(stageSize, partSize int64) []part {
	var parts []part
	for stageSize-s.sent >= partSize && s.next <= maxParts {
		parts = append(parts, part{num: s.next, off: s.sent, size: partSize, evict: true})
		s.sent += partSize
		s.next++
	}
	return parts
}

// send uploads p in the background once a slot is free.
func (s *stream) send(stage *os.File, p part) {
	s.slots <- struct{}{}
	s.wg.Add(1)
	s.mu.Lock()
	s.inFlight++
	s.mu.Unlock()
	go func() {
		err := s.mp.Part(context.Background(), p.num, stage, p.off, p.size)
		<-s.slots
		s.mu.Lock()
		s.inFlight--
		if err != nil {
			if s.err == nil {
				s.err = err
			}
			s.failed = append(s.failed, p)
		} else {
			s.done[p.num] = p.size
			for size, ok := s.done[s.ackedNext]; ok; size, ok = s.done[s.ackedNext] {
				delete(s.done, s.ackedNext)
				s.acked += size
				s.ackedNext++
			}
		}
		s.mu.Unlock()
		select {
		case s.progress <- struct{}{}:
		default:
		}
		// close waits for the parts, not for their trip to the disk; an
		// eviction after the staging file is closed does nothing.
		s.wg.Done()
		if err == nil && p.evict {
			evictWritten(stage, p.off, p.size)
			s.inode.NotifyContent(p.off, p.size)
		}
	}()
}

// confirmed returns the bytes from the start S3 has confirmed, and
// whether parts are still in flight.
func (s *stream) confirmed() (acked int64, waiting bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked, s.inFlight > 0
}

// finish sends the tail from size, waits for every part and completes the
// upload. On failure the upload is aborted and the error returned, unless
// keep: then failed parts stay listed for the next finish to send again.
//
// The completion is conditional on cond. Refused (ErrPrecondition), the
// upload is aborted unless keep, as for any failure.
func (s *stream) finish(ctx context.Context, stage *os.File, size int64, keep bool, cond s3backend.Conditions) (s3backend.ObjectInfo, error) {
	s.mu.Lock()
	again := s.failed
	s.failed, s.err = nil, nil
	s.mu.Unlock()
	for _, p := range again {
		p.evict = false
		s.send(stage, p)
	}
	if tail := size - s.sent; tail > 0 {
		if s.next > maxParts {
			s.mp.Abort()
			return s3backend.ObjectInfo{}, errTooManyParts
		}
		s.send(stage, part{num: s.next, off: s.sent, size: tail})
		s.next++
		s.sent = size
	}
	s.wg.Wait()
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		if !keep {
			s.mp.Abort()
		}
		return s3backend.ObjectInfo{}, err
	}
	info, err := s.mp.Complete(ctx, cond)
	if errors.Is(err, s3backend.ErrPrecondition) && !keep {
		s.mp.Abort() // the staging file holds it all: stored whole elsewhere
	}
	return info, err
}

// abandon discards the upload once its parts in flight have ended.
func (s *stream) abandon() {
	go func() {
		s.wg.Wait()
		s.mp.Abort()
	}()
}

// streamLocked starts or feeds the upload that runs while the file is
// written, once the staging file holds a whole part not yet sent. The
// caller holds ioMu and mu; mu is released while a request is made or a
// part waits for a slot, so that stat and ls never wait for S3.
func (f *File) streamLocked(ctx context.Context, key string) {
	partSize := f.fsys.be.PartSize()
	if !f.streamOK || f.stageSize <= partSize {
		return
	}
	if f.stream == nil {
		m := f.meta
		if m.Mode == 0 {
			m.Mode = syscall.S_IFREG | f.fsys.opts.FileMode
		}
		m = streamMeta(m)
		f.mu.Unlock()
		mp, err := f.fsys.be.StartMultipart(context.WithoutCancel(ctx), key,
			s3backend.PutOptions{ContentType: contentType(key), Metadata: encodeMeta(m)})
		f.mu.Lock()
		if err != nil {
			// Not fatal: close uploads the file whole, and reports.
			f.fsys.log.Warn("could not start streamed upload", "key", key, "err", err)
			f.streamOK = false
			return
		}
		f.stream = &stream{mp: mp, key: key, inode: f.EmbeddedInode(), meta: m, next: 1,
			slots: make(chan struct{}, f.fsys.be.PartsInFlight()), progress: make(chan struct{}, 1),
			ackedNext: 1, done: map[int32]int64{}}
	}
	s, stage := f.stream, f.stage
	due := s.duePartsLocked(f.stageSize, partSize)
	if len(due) == 0 {
		return
	}
	f.mu.Unlock()
	for _, p := range due {
		s.send(stage, p)
	}
	f.mu.Lock()
}

// abandonStreamLocked drops the upload running for f, if any. One whose
// start was released from disk is the only copy of those bytes: it is
// kept, and the upload copies it to the file's key if that changed.
func (f *File) abandonStreamLocked() {
	if f.stream != nil && f.released == 0 {
		f.stream.abandon()
		f.stream = nil
	}
}

// sameStored reports whether an object stored with start's attributes
// shows those of now. A modification time that only the writes set is not
// stored by a streamed upload: S3's LastModified stands for it.
func sameStored(start, now cache.Meta, mtimeSet bool) bool {
	if !mtimeSet {
		now.Mtime = start.Mtime
	}
	return sameAttrs(start, now) && maps.Equal(start.Extra, now.Extra)
}
