package fs

import (
	"context"
	"sync"

	"github.com/s3drive/s3drive/cache"
)

// markerless reports, with no HEAD, that the folder dirKey has no marker
// (so its attributes are the defaults): its own listing shows none — a
// fresh one, one on its way (a readdir's, a walk's), or one page of it
// fetched now. It is asked where a marker is unlikely, inside a folder
// without one, as in a tree another tool wrote with no markers: there the
// listing is what readdir wants next anyway. Where markers are likely, the
// HEAD that reads one's attributes comes first.
//
// A folder found without a marker is remembered as such, as a HEAD that
// found none is (runHead), so that looking it up again costs nothing.
func (f *FS) markerless(ctx context.Context, dirKey string) bool {
	before := f.clock.now(parentOf(dirKey))
	l, err := f.listingForMarker(ctx, dirKey)
	if err != nil || l.HasMarker() {
		return false
	}
	f.clock.keep(parentOf(dirKey), before, func() { f.cache.Put(dirKey, cache.Meta{}) })
	return true
}

// listingForMarker returns a listing of dirKey whose first page has
// arrived: fresh, on its way, or one page fetched now, shared with every
// other caller asking meanwhile (a walk's lookups and the scan ahead of it
// ask for the same folders).
func (f *FS) listingForMarker(ctx context.Context, dirKey string) (*cache.Listing, error) {
	if l, fresh := f.cache.ListingFor(dirKey); fresh {
		return l, nil
	}
	f.listMu.Lock()
	c := f.listCalls[dirKey]
	f.listMu.Unlock()
	if c != nil {
		if err := c.l.WaitStarted(ctx); err != nil {
			return nil, err
		}
		return c.l, nil
	}
	call, owner := f.markerChecks.join(dirKey)
	if owner {
		call.l, _, call.err = f.fetchListing(context.WithoutCancel(ctx), dirKey, 1)
		f.markerChecks.done(dirKey, call)
	}
	select {
	case <-call.done:
		return call.l, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// prefetchMarker runs markerless for dirKey in the background, at most
// HeadConcurrency at a time with the HEADs: a walk's scan, for the folders
// ahead of it.
func (f *FS) prefetchMarker(dirKey string) {
	go func() {
		f.headSlots <- struct{}{}
		defer func() { <-f.headSlots }()
		f.markerless(context.Background(), dirKey)
	}()
}

// markerChecks are the one-page listings in flight that tell whether a
// folder has a marker, by folder.
type markerChecks struct {
	mu    sync.Mutex
	calls map[string]*markerCall
}

type markerCall struct {
	done chan struct{}
	l    *cache.Listing
	err  error
}

// join returns the check of dirKey in flight, or a new one the caller owns.
func (m *markerChecks) join(dirKey string) (*markerCall, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.calls[dirKey]; c != nil {
		return c, false
	}
	if m.calls == nil {
		m.calls = map[string]*markerCall{}
	}
	c := &markerCall{done: make(chan struct{})}
	m.calls[dirKey] = c
	return c, true
}

func (m *markerChecks) done(dirKey string, c *markerCall) {
	m.mu.Lock()
	delete(m.calls, dirKey)
	m.mu.Unlock()
	close(c.done)
}
