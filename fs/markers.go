package fs

import (
	"cmp"
	"context"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/s3drive/s3drive/cache"
)

// markerRetry spaces retries of a marker write that failed.
const markerRetry = 5 * time.Second

// pendingMarkers holds the folders whose marker (the "dir/" object that
// carries a folder's mode, owner and times) is still to be written: made by
// mkdir, given attributes by chmod, chown or utimes, or emptied while they
// existed only implicitly. The write waits until MetaDelay has passed since
// the folder's last change, so that rsync -a's mkdir, chmod and utimes of a
// folder cost one PUT instead of three, and a folder removed before then
// (rm -rf of a folder whose last file it just removed, a scratch folder)
// costs none. Until then the folder exists for this mount only: lookups,
// listings and stat see it here. fsync of a folder, a folder rename and
// unmount write the pending markers first.
type pendingMarkers struct {
	mu      sync.Mutex
	pending map[string]*pendingMarker // by marker key, "a/b/"
}

type pendingMarker struct {
	meta    cache.Meta
	version int // counts changes, so a write can tell it was overtaken
	timer   *time.Timer
	writing chan struct{} // while a PUT of it is on its way; closed after
	// tried: a PUT of it was sent. One that failed may still have been
	// stored (an answer lost on the way back), so the folder's removal
	// must delete the marker all the same.
	tried bool
}

// markLater records m as the attributes of the folder dirKey ("a/b/"), to
// be written to its marker once the folder has been left alone for
// MetaDelay.
func (f *FS) markLater(dirKey string, m cache.Meta) {
	mk := &f.markers
	mk.mu.Lock()
	defer mk.mu.Unlock()
	p := mk.pending[dirKey]
	if p == nil {
		p = &pendingMarker{}
		p.timer = time.AfterFunc(f.opts.MetaDelay, func() {
			if errno := f.writePending(context.Background(), dirKey); errno != 0 {
				f.log.Warn("folder attributes not stored yet; retrying", "key", dirKey, "errno", errno)
			}
		})
		mk.pending[dirKey] = p
	} else {
		p.timer.Reset(f.opts.MetaDelay)
	}
	p.meta = m
	p.version++
	f.clock.tickKey(dirKey)
	f.cache.Put(dirKey, m)
}

// restoreMarker puts back a pending marker that an operation cancelled
// and then failed: the folder stays, so its marker is still to be
// written, and a write of it tried before may still have been stored.
func (f *FS) restoreMarker(dirKey string, c cancelledMarker) {
	if !c.pending {
		return
	}
	f.markLater(dirKey, c.meta)
	mk := &f.markers
	mk.mu.Lock()
	defer mk.mu.Unlock()
	if p := mk.pending[dirKey]; p != nil && c.maybeStored {
		p.tried = true
	}
}

// pendingMarker returns the attributes of dirKey's marker not yet written.
func (f *FS) pendingMarker(dirKey string) (cache.Meta, bool) {
	f.markers.mu.Lock()
	defer f.markers.mu.Unlock()
	if p := f.markers.pending[dirKey]; p != nil {
		return p.meta, true
	}
	return cache.Meta{}, false
}

// pendingIn returns the names of the folders in parent ("" or "a/") whose
// markers are not written yet.
func (f *FS) pendingIn(parent string) []string {
	f.markers.mu.Lock()
	defer f.markers.mu.Unlock()
	var names []string
	for k := range f.markers.pending {
		if rest, ok := strings.CutPrefix(k, parent); ok && strings.Count(rest, "/") == 1 {
			names = append(names, strings.TrimSuffix(rest, "/"))
		}
	}
	return names
}

// cancelledMarker is what cancelMarker took away: the marker's
// attributes, if one was waiting (pending), and whether a write of it was
// ever sent, so that it may be in S3.
type cancelledMarker struct {
	meta        cache.Meta
	pending     bool
	maybeStored bool
}

// cancelMarker forgets dirKey's pending marker (the folder is being
// removed or replaced). A write already on its way is waited for.
func (f *FS) cancelMarker(dirKey string) cancelledMarker {
	mk := &f.markers
	mk.mu.Lock()
	p := mk.pending[dirKey]
	if p == nil {
		mk.mu.Unlock()
		return cancelledMarker{}
	}
	delete(mk.pending, dirKey)
	p.timer.Stop()
	c := cancelledMarker{meta: p.meta, pending: true, maybeStored: p.tried}
	writing := p.writing
	mk.mu.Unlock()
	if writing != nil {
		<-writing
	}
	return c
}

// writePending writes dirKey's pending marker now, if it has one, and
// returns once its latest attributes are in S3.
func (f *FS) writePending(ctx context.Context, dirKey string) syscall.Errno {
	mk := &f.markers
	for {
		mk.mu.Lock()
		p := mk.pending[dirKey]
		if p == nil {
			mk.mu.Unlock()
			return 0
		}
		if w := p.writing; w != nil {
			mk.mu.Unlock()
			<-w
			continue
		}
		p.timer.Stop()
		m, version := p.meta, p.version
		done := make(chan struct{})
		p.writing, p.tried = done, true
		mk.mu.Unlock()

		errno := f.writeMarker(ctx, dirKey, m)

		mk.mu.Lock()
		p.writing = nil
		close(done)
		current := mk.pending[dirKey] == p
		switch {
		case errno != 0 && current:
			p.timer.Reset(markerRetry)
		case errno == 0 && current && p.version == version:
			delete(mk.pending, dirKey)
		}
		mk.mu.Unlock()
		if errno != 0 {
			return errno
		}
		// Changed or removed while it was written: go round again.
	}
}

// movePending renames a folder that exists only here: made by mkdir, its
// marker not written yet, nothing in it, and nothing at the new name — the
// "New Folder" a file manager makes for the user to name. Its pending
// marker moves with it and no request is sent. It reports false, having
// changed nothing, when the folder is not such a one.
func (f *FS) movePending(src, dst string, node *Dir) bool {
	_, pending := f.pendingMarker(src)
	l, fresh := f.cache.Listing(src)
	dstParent, dstName := splitKey(strings.TrimSuffix(dst, "/"))
	if !pending || !fresh || l.Len() != 0 || l.HasMarker() || len(node.Children()) > 0 ||
		len(f.pendingIn(src)) > 0 || !f.cache.Absent(dstParent, dstName) {
		return false
	}
	c := f.cancelMarker(src)
	if !c.pending || l.HasMarker() {
		// Written while we looked: the folder is in S3 after all.
		return false
	}
	if c.maybeStored {
		// A write of it failed and may have been stored: it moves as a
		// stored folder, its marker written first.
		f.restoreMarker(src, c)
		return false
	}
	f.cache.DropTree(src)
	f.cache.Delete(src)
	f.markLater(dst, c.meta)
	f.cache.PutListing(dst, cache.NewListing(nil, false, f.cache.Now()))
	return true
}

// flushMarkers writes every pending marker at or under prefix ("" for
// all), a few at a time, and returns the first failure.
func (f *FS) flushMarkers(ctx context.Context, prefix string) syscall.Errno {
	f.markers.mu.Lock()
	var keys []string
	for k := range f.markers.pending {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	f.markers.mu.Unlock()
	var (
		mu       sync.Mutex
		firstErr syscall.Errno
	)
	parallel(f.opts.CopyConcurrency, keys, nil, func(k string) {
		if errno := f.writePending(ctx, k); errno != 0 {
			mu.Lock()
			firstErr = cmp.Or(firstErr, errno)
			mu.Unlock()
		}
	})
	return firstErr
}
