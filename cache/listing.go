package cache

import (
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

// Listing is one directory's contents as last listed, kept up to date by
// the mount's own changes. It is safe for concurrent use.
//
// Entries are kept in a slice sorted by name, not a map: a folder of
// 100,000 objects costs 7 MB rather than 17, readers page through it in
// order without a copy, and a walk finds its place by binary search. An
// insertion moves the entries after it, a few microseconds per thousand.
type Listing struct {
	mu      sync.Mutex
	entries []Entry // sorted by Name, names unique
	// HasMarker says the directory's own "dir/" marker object exists.
	hasMarker bool
	fetched   time.Time
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

// NewListing returns a listing fetched now. It takes entries over; where
// a file and a directory share a name, the directory wins.
func NewListing(entries []Entry, hasMarker bool, fetched time.Time) *Listing {
	slices.SortFunc(entries, func(a, b Entry) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return boolOrder(b.Dir) - boolOrder(a.Dir) // the directory first
	})
	entries = slices.CompactFunc(entries, func(a, b Entry) bool { return a.Name == b.Name })
	if cap(entries) > len(entries)+len(entries)/4 {
		entries = slices.Clone(entries) // the spare capacity of the appends is not kept
	}
	return &Listing{entries: entries, hasMarker: hasMarker, fetched: fetched}
}

func boolOrder(b bool) int {
	if b {
		return 1
	}
	return 0
}

// find returns where name is, or would be, and whether it is there.
func (l *Listing) find(name string) (int, bool) {
	return slices.BinarySearchFunc(l.entries, name, func(e Entry, name string) int { return strings.Compare(e.Name, name) })
}

// after returns the index of the first entry whose name sorts after name.
func (l *Listing) after(name string) int {
	i, found := l.find(name)
	if found {
		i++
	}
	return i
}

// Get returns the entry for name.
func (l *Listing) Get(name string) (Entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i, ok := l.find(name); ok {
		return l.entries[i], true
	}
	return Entry{}, false
}

// Set adds or replaces an entry.
func (l *Listing) Set(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i, ok := l.find(e.Name); ok {
		l.entries[i] = e
	} else {
		l.entries = slices.Insert(l.entries, i, e)
	}
}

// Remove drops name and reports how many entries are left.
func (l *Listing) Remove(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i, ok := l.find(name); ok {
		l.entries = slices.Delete(l.entries, i, i+1)
	}
	return len(l.entries)
}

// Entries returns a copy of the entries, sorted by name.
func (l *Listing) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries)
}

// Page returns up to n entries that sort after name ("": from the first).
func (l *Listing) Page(name string, n int) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	if name != "" {
		i = l.after(name)
	}
	return slices.Clone(l.entries[i:min(i+n, len(l.entries))])
}

// Ahead returns the entries at most n places after name that also sort
// after since: what a walker at name needs next, less what was asked for
// already.
func (l *Listing) Ahead(name, since string, n int) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	start, end := l.after(name), min(l.after(name)+n, len(l.entries))
	if since != "" {
		start = max(start, l.after(since))
	}
	if start >= end {
		return nil
	}
	return slices.Clone(l.entries[start:end])
}

// DirsAfter returns the names of up to n directories that sort after name.
func (l *Listing) DirsAfter(name string, n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var dirs []string
	for _, e := range l.entries[l.after(name):] {
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
