package fs

import (
	"context"
	"strings"

	"github.com/s3drive/s3drive/cache"
)

const (
	// walkListings bounds the folders listed ahead of a recursive walk at
	// once.
	walkListings = 8
	// walkAhead is how many of the next subfolders a walk keeps listed.
	walkAhead = 16
)

// listCall is one listing on its way, which later callers wait for
// instead of sending their own.
type listCall struct {
	l *cache.Listing // as it is fetched, page by page
	// clock is the folder's change clock when the fetch began: while it
	// holds, the pages received answer lookups (partialListing).
	clock uint64
}

// listShared returns dirKey's listing (readdir's, and a walk's ahead of
// it): from the cache when fresh, else it joins the listing on its way, or
// lists the folder from S3 (every page). No HEAD: the entries' attributes
// are fetched when asked for (scan.go).
func (f *FS) listShared(ctx context.Context, dirKey string) (*cache.Listing, error) {
	// While S3 does not answer, the listing held, however old (offline.go).
	if f.be.Offline() {
		if l, _ := f.cache.Listing(dirKey); l != nil {
			return l, nil
		}
	}
	l, err := f.listSharedOnline(ctx, dirKey)
	if f.outage(err) {
		if stale, _ := f.cache.Listing(dirKey); stale != nil {
			return stale, nil
		}
	}
	return l, err
}

func (f *FS) listSharedOnline(ctx context.Context, dirKey string) (*cache.Listing, error) {
	f.listMu.Lock()
	// A listing is cached before its call is dropped from listCalls, so
	// under listMu it is either on its way or in the cache.
	if l, fresh := f.cache.Listing(dirKey); fresh && !f.awaitingIn(dirKey) {
		f.listMu.Unlock()
		return l, nil
	}
	c := f.listCalls[dirKey]
	if c == nil || c.clock != f.clock.now(dirKey) {
		// None on its way, or one begun before a change this mount made
		// to the folder since: a reader now must see the change.
		c = &listCall{l: cache.NewPartialListing(f.cache.Now()), clock: f.clock.now(dirKey)}
		f.listCalls[dirKey] = c
		// Others may be reading it: an interrupted caller does not cancel it.
		go f.streamListing(context.WithoutCancel(ctx), dirKey, c)
	}
	f.listMu.Unlock()
	// The reader takes the pages as they come, while the next ones are
	// fetched: a walk of a big folder starts on its first thousand
	// entries, not after the last page.
	if err := c.l.WaitStarted(ctx); err != nil {
		return nil, err
	}
	return c.l, nil
}

// streamListing fetches every page of dirKey into c's listing and caches
// it, unless this mount changed the folder meanwhile: then the folder is
// listed again for the cache (the readers keep the first listing, a state
// the folder had).
func (f *FS) streamListing(ctx context.Context, dirKey string, c *listCall) {
	// A failure aborts c.l, which tells its readers.
	if complete, _ := f.listFolder(ctx, dirKey, 0, c.l); complete &&
		!f.clock.keep(dirKey, c.clock, func() { f.cache.PutListing(dirKey, c.l) }) {
		f.fetchListing(ctx, dirKey, 0)
	}
	f.listMu.Lock()
	if f.listCalls[dirKey] == c { // not replaced by a newer one
		delete(f.listCalls, dirKey)
	}
	f.listMu.Unlock()
}

// partialListing returns dirKey's listing on its way, if this mount has
// not changed the folder since it began.
func (f *FS) partialListing(dirKey string) *cache.Listing {
	f.listMu.Lock()
	defer f.listMu.Unlock()
	if c := f.listCalls[dirKey]; c != nil && c.clock == f.clock.now(dirKey) {
		return c.l
	}
	return nil
}

// walking notes a readdir of dirKey. Recursive walks (ls -lR, find, du,
// rsync, a file manager adding up a folder's size) read a folder, then its
// subfolders one after another, and each readdir waits for its LIST. A
// readdir that lands in a subfolder of a
// folder read just before is such a walk: the next walkAhead subfolders
// after it, in name order, are listed in the background, walkListings at
// a time, so that the walker finds them ready. The window moves with the
// walker, so a deep subtree does not leave listings made too early to
// expire unused.
func (f *FS) walking(dirKey string) {
	if dirKey == "" {
		return
	}
	parent, name := splitKey(strings.TrimSuffix(dirKey, "/"))
	pl, fresh := f.cache.Listing(parent)
	if pl == nil || !fresh || !pl.WasRead() {
		return
	}
	var ahead []string
	for _, sub := range pl.DirsAfter(name, walkAhead) {
		sub = parent + sub + "/"
		if _, fresh := f.cache.Listing(sub); !fresh && !f.listing(sub) {
			ahead = append(ahead, sub)
		}
	}
	if len(ahead) == 0 {
		return
	}
	go func() {
		for _, sub := range ahead {
			f.walkSlots <- struct{}{}
			go func() {
				defer func() { <-f.walkSlots }()
				f.listShared(context.Background(), sub) // fresh by now: no request
			}()
		}
	}()
}

// listing reports whether a listing of dirKey is on its way.
func (f *FS) listing(dirKey string) bool {
	f.listMu.Lock()
	defer f.listMu.Unlock()
	return f.listCalls[dirKey] != nil
}
