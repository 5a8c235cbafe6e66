package fs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"

	"github.com/s3drive/s3drive/cache"
	"github.com/s3drive/s3drive/s3backend"
)

// kind of a resolved name.
type kind uint8

const (
	kindFile kind = iota + 1
	kindDir
	kindSymlink
)

// resolved is what a name in a directory turned out to be.
type resolved struct {
	kind kind
	meta cache.Meta
	// asOf is the folder's change clock when the answer was sought: an
	// inode takes meta only if the folder has not changed since.
	asOf uint64
}

// errOvertaken: a HEAD's answer was overtaken by a change this mount made
// while it was on its way.
var errOvertaken = errors.New("answer overtaken by a change")

// errCutShort ends a listing read no further than its first pages.
var errCutShort = errors.New("listing cut short")

// resolveTries bounds the lookups of a name whose folder this mount keeps
// changing while they are on their way.
const resolveTries = 3

func kindOf(m cache.Meta) kind {
	switch {
	case m.IsSymlnk:
		return kindSymlink
	case m.Mode&syscall.S_IFMT == syscall.S_IFDIR:
		return kindDir // s3fs's old folder object: "name", no slash (see decodeMeta)
	}
	return kindFile
}

// resolve finds what name is in the directory dirKey, as cheaply as the
// caches allow:
//  1. a fresh listing of the directory answers every name in it, positive
//     or negative, with no request (HEAD only for an object never seen);
//  2. a fresh negative or metadata entry answers with no request;
//  3. a folder not listed within the TTL is listed with one page, if that
//     holds all of it (one request for this name and its siblings);
//  4. otherwise HEAD "name" and LIST "name/" (one key) go out together,
//     as mountpoint-s3 does; the directory wins if both exist.
func (f *FS) resolve(ctx context.Context, dirKey, name string) (resolved, error) {
	for try := 1; ; try++ {
		before := f.clock.now(dirKey)
		if f.be.Offline() { // answer from the caches without asking
			if res, err, ok := f.resolveOffline(dirKey, name); ok {
				res.asOf = before - 1 // never taken by an inode: see refresh
				return res, err
			}
		}
		res, err := f.resolveAt(ctx, dirKey, name, before)
		if f.outage(err) {
			if stale, serr, ok := f.resolveOffline(dirKey, name); ok {
				res, err, before = stale, serr, before-1
			}
		}
		res.asOf = before
		if errors.Is(err, errOvertaken) {
			if try < resolveTries {
				continue
			}
			// The best answer there is; the inode does not take it
			// (the clock moved since before).
			err = nil
		}
		return res, err
	}
}

// listingFor returns the listing of dirKey that answers name, or nil: a
// readdir's on its way that is past name already, else a fresh one.
func (f *FS) listingFor(dirKey, name string) *cache.Listing {
	if pl := f.partialListing(dirKey); pl != nil && pl.Covers(name) {
		return pl
	}
	if l, fresh := f.cache.ListingFor(dirKey); fresh {
		return l
	}
	return nil
}

// resolveCached answers name in dirKey from the caches alone, as resolve
// would with a fresh listing, or reports that a request would be needed.
func (f *FS) resolveCached(dirKey, name string) (resolved, bool) {
	if f.be.Offline() {
		return resolved{}, false // the kernel's own lookup answers offline
	}
	before := f.clock.now(dirKey)
	key := childKey(dirKey, name)
	if m, ok := f.pendingMarker(key + "/"); ok {
		return resolved{kind: kindDir, meta: m, asOf: before}, true
	}
	l := f.listingFor(dirKey, name)
	if l == nil {
		return resolved{}, false
	}
	e, ok := l.Get(name)
	if !ok {
		return resolved{}, false
	}
	if e.Dir {
		m, ok := f.cache.Known(key + "/")
		return resolved{kind: kindDir, meta: m, asOf: before}, ok
	}
	m, ok := f.cache.Match(key, e.Observed)
	return resolved{kind: kindOf(m), meta: m, asOf: before}, ok
}

// resolveAt is one attempt of resolve, begun when dirKey's clock read before.
func (f *FS) resolveAt(ctx context.Context, dirKey, name string, before uint64) (resolved, error) {
	key := childKey(dirKey, name)
	if m, ok := f.pendingMarker(key + "/"); ok {
		// Made here and not in S3 yet (nor, perhaps, in a listing).
		return resolved{kind: kindDir, meta: m}, nil
	}
	if f.awaiting(key) {
		// An upload link may fill it at any moment: only S3 knows.
		return f.headAndList(ctx, dirKey, name, before)
	}
	if l := f.listingFor(dirKey, name); l != nil {
		return f.fromListing(ctx, l, dirKey, name)
	}
	sub, answers := f.cache.ListingFor(key + "/")
	if !answers {
		sub = f.partialListing(key + "/") // a readdir's, on its way
	}
	if sub != nil && sub.Len() > 0 {
		// A folder whose own listing answers, with entries in it, exists:
		// a walk of a big folder looks its name up again each time the
		// kernel's entry expires, and the parent's listing, past its TTL,
		// would be listed again for it.
		if m, known := f.cache.Known(key + "/"); known {
			return resolved{kind: kindDir, meta: m}, nil
		}
	}
	if f.cache.Negative(key) || f.cache.Absent(dirKey, name) {
		// rsync's temporary names, looked up just before each is created.
		return resolved{}, syscall.ENOENT
	}
	if m, ok := f.cache.Fresh(key + "/"); ok {
		return resolved{kind: kindDir, meta: m}, nil
	}
	if m, ok := f.cache.Fresh(key); ok {
		return resolved{kind: kindOf(m), meta: m}, nil
	}
	if l, _ := f.cache.ListingFor(dirKey); (l == nil || l.Len() < smallFolder) && !f.isLarge(dirKey) {
		// One page of listing answers this name and every sibling, where a
		// cold lookup costs two requests for one name: cp -r, tar and rsync
		// stat name after name without reading the folder first. A folder
		// found to need more than one page is remembered and left to the
		// per-name path. No prefetch: a lookup HEADs only its own object.
		refreshed, complete, err := f.fetchListing(ctx, dirKey, 1)
		switch {
		case err == nil && complete:
			return f.fromListing(ctx, refreshed, dirKey, name)
		case err == nil:
			f.large.Store(dirKey, true)
		case f.outage(err):
			return resolved{}, err // asking again would wait as long
		}
	}
	return f.headAndList(ctx, dirKey, name, before)
}

// headAndList asks S3 about name alone: HEAD "name" and LIST "name/" (one
// key) together, as mountpoint-s3 does; the folder wins if both exist.
func (f *FS) headAndList(ctx context.Context, dirKey, name string, before uint64) (resolved, error) {
	key := childKey(dirKey, name)
	var (
		wg      sync.WaitGroup
		page    s3backend.ListPage
		listErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		page, listErr = f.be.List(ctx, key+"/", "", "", 1)
	}()
	m, headErr := f.headOnce(ctx, key)
	wg.Wait()
	if listErr == nil && (len(page.Objects) > 0 || len(page.Prefixes) > 0) {
		dm, _ := f.cache.Known(key + "/")
		return resolved{kind: kindDir, meta: dm}, nil
	}
	if listErr != nil {
		return resolved{}, listErr
	}
	if errors.Is(headErr, errOvertaken) {
		return resolved{kind: kindOf(m), meta: m}, headErr
	}
	if errors.Is(headErr, s3backend.ErrNotFound) {
		f.clock.keep(dirKey, before, func() { f.cache.SetNegative(key) })
		return resolved{}, syscall.ENOENT
	}
	if headErr != nil {
		return resolved{}, headErr
	}
	f.arrived(key)
	return resolved{kind: kindOf(m), meta: m}, nil
}

// smallFolder is the size below which a folder's listing is refreshed whole
// rather than asked about one name: one page of ListObjectsV2.
const smallFolder = 1000

// isLarge reports whether dirKey was found to need more than one page.
func (f *FS) isLarge(dirKey string) bool {
	_, ok := f.large.Load(dirKey)
	return ok
}

// fromListing answers a lookup from a fresh listing of the folder.
func (f *FS) fromListing(ctx context.Context, l *cache.Listing, dirKey, name string) (resolved, error) {
	key := childKey(dirKey, name)
	e, ok := l.Get(name)
	switch {
	case !ok:
		return resolved{}, syscall.ENOENT
	case e.Dir:
		// A folder's times and mode are on its marker, which listings
		// show without metadata.
		m, ok := f.cache.Known(key + "/")
		f.scanning(l, dirKey, name, !ok) // first: it may start the scan ahead
		if !ok && !l.HasMarker() && f.markerless(ctx, key+"/") {
			ok = true // the defaults, which are exact
		}
		if !ok {
			var err error
			if m, err = f.headOnce(ctx, key+"/"); errors.Is(err, errOvertaken) {
				return resolved{kind: kindDir, meta: m}, err
			} // other failures: the defaults
		}
		return resolved{kind: kindDir, meta: m}, nil
	}
	m, ok := f.cache.Match(key, e.Observed)
	f.scanning(l, dirKey, name, !ok)
	if ok {
		return resolved{kind: kindOf(m), meta: m}, nil
	}
	m, err := f.headOnce(ctx, key)
	return resolved{kind: kindOf(m), meta: m}, err
}

// headCall is one HEAD in flight; everyone who needs the same key waits
// for it instead of sending another.
type headCall struct {
	done chan struct{}
	meta cache.Meta
	err  error
	// overtaken: this mount changed the key's folder while the HEAD was
	// on its way, so meta may predate the change (not cached).
	overtaken bool
}

// headOnce HEADs key, or joins a HEAD for it already in flight.
func (f *FS) headOnce(ctx context.Context, key string) (cache.Meta, error) {
	var call *headCall
	var owner bool
	for call == nil {
		if call, owner = f.headCallFor(key); call == nil {
			// A HEAD for it finished after the caller's cache check.
			if m, ok := f.cache.Fresh(key); ok {
				return m, nil
			}
		}
	}
	if owner {
		f.runHead(call, key)
	}
	select {
	case <-call.done:
		if call.overtaken && call.err == nil {
			return call.meta, errOvertaken
		}
		return call.meta, call.err
	case <-ctx.Done():
		return cache.Meta{}, ctx.Err()
	}
}

// headCallFor returns the HEAD in flight for key, or registers a new one
// that the caller owns. It returns nil when a HEAD for key completed within
// the TTL (runHead caches before it unregisters, so the check under the
// lock cannot miss one).
func (f *FS) headCallFor(key string) (call *headCall, owner bool) {
	f.pendingMu.Lock()
	defer f.pendingMu.Unlock()
	if c, ok := f.pending[key]; ok {
		return c, false
	}
	if _, ok := f.cache.Fresh(key); ok {
		return nil, false
	}
	c := &headCall{done: make(chan struct{})}
	f.pending[key] = c
	return c, true
}

// runHead sends the HEAD for call. It is not cancelled with the caller's
// context: other waiters may share it, and the answer is worth caching.
func (f *FS) runHead(call *headCall, key string) {
	before := f.clock.now(parentOf(key))
	info, err := f.be.Head(context.Background(), key)
	switch {
	case err == nil:
		call.meta = decodeMeta(info)
		call.overtaken = !f.clock.keep(parentOf(key), before, func() { f.cache.Put(key, call.meta) })
	case strings.HasSuffix(key, "/") && errors.Is(err, s3backend.ErrNotFound):
		// A folder without a marker: remembered, so as not to ask again.
		err = nil
		call.overtaken = !f.clock.keep(parentOf(key), before, func() { f.cache.Put(key, call.meta) })
	}
	call.err = err
	f.pendingMu.Lock()
	delete(f.pending, key)
	f.pendingMu.Unlock()
	close(call.done)
}

// listingTries bounds the listings of a folder this mount keeps changing
// while they are on their way (see changeClock).
const listingTries = 3

// fetchListing lists dirKey from S3, at most maxPages pages (0: all). A
// complete listing is cached; one cut short is not, and complete is false
// (it tells only whether the folder has a marker).
// A listing overtaken by a change this mount made to the folder is taken
// again (listingTries in all; the last is returned uncached). It sends no
// HEAD: attributes of objects never seen are fetched when something asks
// for them (see scan.go).
func (f *FS) fetchListing(ctx context.Context, dirKey string, maxPages int) (l *cache.Listing, complete bool, err error) {
	for try := 1; ; try++ {
		before := f.clock.now(dirKey)
		l := cache.NewPartialListing(f.cache.Now())
		complete, err := f.listFolder(ctx, dirKey, maxPages, l)
		if err != nil {
			return nil, false, err
		}
		if !complete {
			return l, false, nil // cut short: only whether there is a marker holds
		}
		kept := f.clock.keep(dirKey, before, func() { f.cache.PutListing(dirKey, l) })
		if !kept && try < listingTries {
			continue
		}
		return l, true, nil
	}
}

// listFolder lists dirKey into the partial listing l, page by page, at
// most maxPages pages (0: all), and finishes it if that was all; complete
// says so. A failure aborts l.
func (f *FS) listFolder(ctx context.Context, dirKey string, maxPages int, l *cache.Listing) (complete bool, err error) {
	var (
		hasMarker bool
		token     string
		pages     int
	)
	for {
		page, err := f.be.List(ctx, dirKey, "/", token, f.opts.ListPageSize)
		if err != nil {
			l.Abort(err)
			return false, err
		}
		pages++
		entries := make([]cache.Entry, 0, len(page.Objects)+len(page.Prefixes))
		if pages == 1 && len(page.Objects) > 0 && page.Objects[0].Key == dirKey {
			// Known from the first page on (the marker sorts first), for
			// those waiting on the listing to learn it (markerless).
			l.SetMarker(true)
		}
		for _, o := range page.Objects {
			name := o.Key[len(dirKey):]
			switch {
			case o.Key == dirKey:
				hasMarker = true
				continue
			case strings.HasSuffix(name, "/") && validName(strings.TrimSuffix(name, "/")):
				// A marker some servers list as an object, not a prefix.
				entries = append(entries, cache.Entry{Name: strings.TrimSuffix(name, "/"), Dir: true})
				continue
			case strings.HasSuffix(name, legacyDirSuffix):
				if dn := strings.TrimSuffix(name, legacyDirSuffix); validName(dn) {
					entries = append(entries, cache.Entry{Name: dn, Dir: true})
				}
				continue
			case !validName(name):
				f.hide(o.Key, "invalid file name")
				continue
			}
			obs := cache.Observed{Size: o.Size, ETag: o.ETag, LastModified: o.LastModified}
			entries = append(entries, cache.Entry{Name: name, Observed: obs})
		}
		for _, p := range page.Prefixes {
			name := strings.TrimSuffix(p[len(dirKey):], "/")
			if !validName(name) {
				f.hide(p, "invalid directory name")
				continue
			}
			entries = append(entries, cache.Entry{Name: name, Dir: true})
		}
		l.AddPage(entries)
		if page.NextToken == "" {
			break
		}
		if pages == maxPages {
			l.SetMarker(hasMarker) // the marker sorts first: page 1 shows it
			l.Abort(errCutShort)
			return false, nil
		}
		token = page.NextToken
	}
	l.Finish(hasMarker)
	return true, nil
}
