package cache

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Entry is one name in a directory listing.
type Entry struct {
	Name string
	Dir  bool
	Observed
}

// compareKeys orders entries as S3 lists their keys: a directory as its
// name followed by "/" ("a.txt" < "a/" < "a0"), so that a listing fetched
// page by page only ever grows at its end.
func compareKeys(a string, aDir bool, b string, bDir bool) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	la, lb := len(a), len(b)
	if aDir {
		la++
	}
	if bDir {
		lb++
	}
	for i := n; i < min(la, lb); i++ {
		if c := cmp.Compare(keyByte(a, i), keyByte(b, i)); c != 0 {
			return c
		}
	}
	return cmp.Compare(la, lb)
}

// keyByte is byte i of name, or of name+"/" past its end.
func keyByte(name string, i int) byte {
	if i < len(name) {
		return name[i]
	}
	return '/'
}

// Listing is one directory's contents as last listed, kept up to date by
// the mount's own changes. It is safe for concurrent use.
//
// Entries are kept in a slice in key order, not a map: a folder of 100,000
// objects costs 7 MB rather than 17, readers page through it in order
// without a copy, and a walk finds its place by binary search. An insertion
// moves the entries after it, a few microseconds per thousand.
//
// A listing can be read while it is fetched (NewPartialListing): pages are
// added as they come, and the names up to the last one received are
// already answered.
type Listing struct {
	mu      sync.Mutex
	entries []Entry // in key order; a name is a file or a directory, not both (the directory wins)
	// HasMarker says the directory's own "dir/" marker object exists.
	hasMarker bool
	fetched   time.Time
	// While fetched: partial, the last entry received (mark), a channel
	// closed when more arrive (grown), and why the fetch failed.
	partial bool
	mark    Entry
	grown   chan struct{}
	failed  error
	// misses counts lookups answered from this listing that needed a
	// HEAD: more than one means someone is walking the folder.
	misses atomic.Int32
	// read: a readdir returned it.
	read atomic.Bool
	// walker is the mount's walk of this listing (see Walker).
	walker any
}

// A walk of a folder that a readdir just returned (ls -l, find, rsync, a
// file manager) looks up every name in it, once while reading it and often
// again to stat it; in a big folder that takes longer than the TTL, and a
// lookup in a listing past its TTL would cost a HEAD and a LIST of its own.
// So a listing a readdir returned answers lookups for walkPerEntry per
// entry after its fetch (at most walkCap), or the TTL if that is longer: a
// small folder's listing ages as any other, a big one's serves the walk,
// and the next readdir past the TTL lists it again.
const (
	walkPerEntry = 5 * time.Millisecond
	walkCap      = 10 * time.Minute
)

// walkBudget is how long after its fetch a listing a readdir returned
// answers lookups.
func (l *Listing) walkBudget() time.Duration {
	return min(time.Duration(l.Len())*walkPerEntry, walkCap)
}

// NewListing returns a complete listing fetched at fetched. It takes
// entries over; where a file and a directory share a name, the directory
// wins.
func NewListing(entries []Entry, hasMarker bool, fetched time.Time) *Listing {
	slices.SortFunc(entries, func(a, b Entry) int { return compareKeys(a.Name, a.Dir, b.Name, b.Dir) })
	entries = slices.CompactFunc(entries, func(a, b Entry) bool { return a.Name == b.Name && a.Dir == b.Dir })
	return &Listing{entries: settled(entries), hasMarker: hasMarker, fetched: fetched}
}

// settled is a complete listing's sorted entries as kept: without the
// files that share a directory's name, and without the spare capacity of
// the appends that built them (up to as much again), which would stay for
// as long as the listing does.
func settled(entries []Entry) []Entry {
	dirs := map[string]bool{}
	for _, e := range entries {
		if e.Dir {
			dirs[e.Name] = true
		}
	}
	entries = slices.DeleteFunc(entries, func(e Entry) bool { return !e.Dir && dirs[e.Name] })
	if cap(entries) > len(entries)+len(entries)/4 {
		entries = slices.Clone(entries)
	}
	return entries
}

// NewPartialListing returns an empty listing whose fetch begins at
// fetched; AddPage grows it, Finish or Abort ends it.
func NewPartialListing(fetched time.Time) *Listing {
	return &Listing{fetched: fetched, partial: true, grown: make(chan struct{})}
}

// AddPage adds a page of entries, all after those added before (as S3
// lists them).
func (l *Listing) AddPage(page []Entry) {
	slices.SortFunc(page, func(a, b Entry) int { return compareKeys(a.Name, a.Dir, b.Name, b.Dir) })
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range page {
		if n := len(l.entries); n == 0 || compareKeys(l.entries[n-1].Name, l.entries[n-1].Dir, e.Name, e.Dir) < 0 {
			l.entries = append(l.entries, e)
		} else if i, found := l.find(e.Name, e.Dir); !found {
			l.entries = slices.Insert(l.entries, i, e) // out of S3's order: a legacy folder object
		}
		if e.Dir { // the folder wins over a file of its name, listed before it
			if i, found := l.find(e.Name, false); found {
				l.entries = slices.Delete(l.entries, i, i+1)
			}
		}
	}
	if len(page) > 0 {
		if last := page[len(page)-1]; compareKeys(l.mark.Name, l.mark.Dir, last.Name, last.Dir) < 0 {
			l.mark = last
		}
	}
	close(l.grown)
	l.grown = make(chan struct{})
}

// Finish completes a partial listing.
func (l *Listing) Finish(hasMarker bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = settled(l.entries)
	l.hasMarker, l.partial = hasMarker, false
	close(l.grown)
}

// Abort ends a partial listing that could not be fetched whole.
func (l *Listing) Abort(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed = err
	close(l.grown)
}

// Covers reports whether the listing answers name: complete, or fetched
// past both the file and the folder name could be.
func (l *Listing) Covers(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed == nil && (!l.partial || compareKeys(name, true, l.mark.Name, l.mark.Dir) <= 0)
}

// WaitStarted waits until the listing has its first entries, is complete,
// or failed (its error).
func (l *Listing) WaitStarted(ctx context.Context) error {
	for {
		l.mu.Lock()
		failed, started, grown := l.failed, len(l.entries) > 0 || !l.partial, l.grown
		l.mu.Unlock()
		switch {
		case failed != nil:
			return failed
		case started:
			return nil
		}
		select {
		case <-grown:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// find returns where the entry (name, dir) is, or would be, and whether
// it is there.
func (l *Listing) find(name string, dir bool) (int, bool) {
	return slices.BinarySearchFunc(l.entries, name, func(e Entry, name string) int {
		return compareKeys(e.Name, e.Dir, name, dir)
	})
}

// after returns the index of the first entry after (name, dir).
func (l *Listing) after(name string, dir bool) int {
	i, found := l.find(name, dir)
	if found {
		i++
	}
	return i
}

// lookup returns the index of name, a directory first.
func (l *Listing) lookup(name string) (int, bool) {
	if i, ok := l.find(name, true); ok {
		return i, true
	}
	return l.find(name, false)
}

// Get returns the entry for name.
func (l *Listing) Get(name string) (Entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i, ok := l.lookup(name); ok {
		return l.entries[i], true
	}
	return Entry{}, false
}

// Set adds or replaces the entry for e.Name.
func (l *Listing) Set(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i, ok := l.find(e.Name, !e.Dir); ok {
		l.entries = slices.Delete(l.entries, i, i+1)
	}
	if i, ok := l.find(e.Name, e.Dir); ok {
		l.entries[i] = e
	} else {
		l.entries = slices.Insert(l.entries, i, e)
	}
}

// Remove drops name and reports how many entries are left.
func (l *Listing) Remove(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, dir := range []bool{false, true} {
		if i, ok := l.find(name, dir); ok {
			l.entries = slices.Delete(l.entries, i, i+1)
		}
	}
	return len(l.entries)
}

// Entries returns a copy of the entries, in key order.
func (l *Listing) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries)
}

// Page returns up to n entries after the entry at (name, dir), or from
// the first if name is "". When there are none yet in a partial listing,
// it returns a channel closed when there may be; err is the fetch's
// failure.
func (l *Listing) Page(name string, dir bool, n int) (page []Entry, more <-chan struct{}, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	if name != "" {
		i = l.after(name, dir)
	}
	page = l.entries[i:min(i+n, len(l.entries))]
	if l.partial {
		page = page[:l.answered(page)]
	}
	page = slices.Clone(page)
	switch {
	case len(page) > 0:
		return page, nil, nil
	case l.failed != nil:
		return nil, nil, l.failed
	case l.partial:
		return nil, l.grown, nil
	}
	return nil, nil, nil
}

// answered is how many of page, entries of a partial listing, can be
// shown: up to the first file whose folder twin may still come. A folder
// "a/" lists after "a" and "a.txt", so a readdir that showed "a" would
// show the name twice when "a/" arrives.
func (l *Listing) answered(page []Entry) int {
	for i, e := range page {
		if !e.Dir && compareKeys(e.Name, true, l.mark.Name, l.mark.Dir) > 0 {
			return i
		}
	}
	return len(page)
}

// Ahead returns the entries at most n places after name that also sort
// after since: what a walker at name needs next, less what was asked for
// already.
func (l *Listing) Ahead(name, since string, n int) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := l.after(name, false)
	end := min(start+n, len(l.entries))
	if since != "" {
		start = max(start, l.after(since, false))
	}
	if start >= end {
		return nil
	}
	return slices.Clone(l.entries[start:end])
}

// DirsAfter returns the names of up to n directories after the directory
// name.
func (l *Listing) DirsAfter(name string, n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var dirs []string
	for _, e := range l.entries[l.after(name, true):] {
		if len(dirs) == n {
			break
		}
		if e.Dir {
			dirs = append(dirs, e.Name)
		}
	}
	return dirs
}

// Len is the number of entries.
func (l *Listing) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// HasMarker reports whether the directory's marker object exists.
func (l *Listing) HasMarker() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hasMarker
}

// SetMarker records that the marker object was written or deleted.
func (l *Listing) SetMarker(v bool) {
	l.mu.Lock()
	l.hasMarker = v
	l.mu.Unlock()
}

func (l *Listing) age(now time.Time) time.Duration { return now.Sub(l.fetched) }

// Fetched is when the listing was asked for: what changed in S3 after it
// may be missing from it.
func (l *Listing) Fetched() time.Time { return l.fetched }

// Missed records a lookup answered from l that needed a HEAD and returns
// how many there have been.
func (l *Listing) Missed() int32 { return l.misses.Add(1) }

// MarkRead records that a readdir returned the listing.
func (l *Listing) MarkRead() { l.read.Store(true) }

// answers reports whether the listing answers a lookup at now: within ttl
// of its fetch, or within its walk budget if a readdir returned it.
func (l *Listing) answers(now time.Time, ttl time.Duration) bool {
	age := l.age(now)
	return age < ttl || (l.read.Load() && age < l.walkBudget())
}

// WasRead reports whether a readdir returned the listing.
func (l *Listing) WasRead() bool { return l.read.Load() }

// Walker returns the state a walk of this listing keeps (the fs package's
// scan), making it with start if there is none yet; start may return nil.
// It is kept with the listing so that it goes when the listing does.
func (l *Listing) Walker(start func() any) any {
	l.mu.Lock()
	w := l.walker
	l.mu.Unlock()
	if w != nil {
		return w
	}
	w = start() // unlocked: it may read the listing
	if w == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.walker == nil {
		l.walker = w
	}
	return l.walker
}
