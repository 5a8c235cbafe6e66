package cache

import (
	"sort"
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

// Listing is one directory's contents as last listed, kept up to date by
// the mount's own changes. It is safe for concurrent use.
type Listing struct {
	mu      sync.Mutex
	entries map[string]Entry
	// HasMarker says the directory's own "dir/" marker object exists.
	hasMarker bool
	fetched   time.Time
	// misses counts lookups answered from this listing that needed a
	// HEAD: more than one means someone is walking the folder.
	misses atomic.Int32
	// read: a readdir returned it.
	read atomic.Bool
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

// NewListing returns a listing fetched now.
func NewListing(entries []Entry, hasMarker bool, fetched time.Time) *Listing {
	l := &Listing{entries: make(map[string]Entry, len(entries)), hasMarker: hasMarker, fetched: fetched}
	for _, e := range entries {
		if old, ok := l.entries[e.Name]; ok && old.Dir {
			continue // a directory wins over a file of the same name
		}
		l.entries[e.Name] = e
	}
	return l
}

// Get returns the entry for name.
func (l *Listing) Get(name string) (Entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[name]
	return e, ok
}

// Set adds or replaces an entry.
func (l *Listing) Set(e Entry) {
	l.mu.Lock()
	l.entries[e.Name] = e
	l.mu.Unlock()
}

// Remove drops name and reports how many entries are left.
func (l *Listing) Remove(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, name)
	return len(l.entries)
}

// Entries returns the entries sorted by name.
func (l *Listing) Entries() []Entry {
	l.mu.Lock()
	out := make([]Entry, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, e)
	}
	l.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
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
