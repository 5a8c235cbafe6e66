package cache

import (
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Options size the cache.
type Options struct {
	// TTL is how long metadata and listings are used without asking S3.
	TTL time.Duration
	// NegativeTTL is how long a name known not to exist stays so.
	NegativeTTL time.Duration
	// Entries bounds the in-memory metadata entries (default 16,384).
	// More are kept in the store, and the kernel's inodes hold their own:
	// memory need not grow with the biggest folder walked.
	Entries int
	// Listings bounds the directory listings kept (default 1,024).
	Listings int
	// StorePath is the bbolt file of the persistent store; empty keeps
	// metadata in memory only.
	StorePath string
}

type metaEntry struct {
	meta    Meta
	checked time.Time // when S3 last confirmed it
}

// Cache is the mount's metadata cache. It is safe for concurrent use.
type Cache struct {
	opts     Options
	meta     *lru.Cache[string, metaEntry]
	negative *lru.Cache[string, time.Time]
	listings *lru.Cache[string, *Listing]
	store    *Store // nil without StorePath
	now      func() time.Time
	tally    Tally
}

// Tally counts a cache's answers: hits answered from it, misses sent to S3.
type Tally struct{ hits, misses atomic.Int64 }

func (t *Tally) note(hit bool) {
	if hit {
		t.hits.Add(1)
	} else {
		t.misses.Add(1)
	}
}

// Counts returns the hits and misses so far.
func (t *Tally) Counts() (hits, misses int64) { return t.hits.Load(), t.misses.Load() }

// Tally counts the metadata questions (is this still fresh? does this
// match what a listing shows?) the cache answered, and those it could not.
func (c *Cache) Tally() *Tally { return &c.tally }

// Open creates a cache, opening (or creating) its persistent store.
func Open(opts Options) (*Cache, error) {
	if opts.Entries <= 0 {
		opts.Entries = 16_384
	}
	if opts.Listings <= 0 {
		opts.Listings = 1024
	}
	c := &Cache{opts: opts, now: time.Now}
	c.meta, _ = lru.New[string, metaEntry](opts.Entries)
	c.negative, _ = lru.New[string, time.Time](opts.Entries)
	c.listings, _ = lru.New[string, *Listing](opts.Listings)
	if opts.StorePath != "" {
		s, err := OpenStore(opts.StorePath)
		if err != nil {
			return nil, err
		}
		c.store = s
	}
	return c, nil
}

// Close closes the persistent store.
func (c *Cache) Close() error {
	if c.store == nil {
		return nil
	}
	return c.store.Close()
}

// TTL is the configured metadata TTL.
func (c *Cache) TTL() time.Duration { return c.opts.TTL }

// Fresh returns key's metadata if S3 confirmed it within the TTL.
func (c *Cache) Fresh(key string) (Meta, bool) {
	e, ok := c.meta.Get(key)
	if !ok || c.now().Sub(e.checked) >= c.opts.TTL {
		c.tally.note(false)
		return Meta{}, false
	}
	c.tally.note(true)
	return e.meta, true
}

// Known returns key's metadata whatever its age, from memory or the store.
func (c *Cache) Known(key string) (Meta, bool) {
	if e, ok := c.meta.Get(key); ok {
		return e.meta, true
	}
	if c.store == nil {
		return Meta{}, false
	}
	m, ok := c.store.Get(key)
	if ok {
		c.meta.Add(key, metaEntry{meta: m})
	}
	return m, ok
}

// Match returns key's metadata if it still describes the object a listing
// observed, and marks it confirmed. A mismatching entry is dropped: the
// object was changed by someone else.
func (c *Cache) Match(key string, o Observed) (Meta, bool) {
	m, ok := c.Known(key)
	c.tally.note(ok && m.Matches(o))
	if !ok {
		return Meta{}, false
	}
	if !m.Matches(o) {
		c.Delete(key)
		return Meta{}, false
	}
	if m.LastModified.IsZero() && !o.LastModified.IsZero() {
		m.LastModified = o.LastModified
		c.Put(key, m)
		return m, true
	}
	c.meta.Add(key, metaEntry{meta: m, checked: c.now()})
	return m, true
}

// Put records key's metadata as confirmed now, in memory and in the store.
func (c *Cache) Put(key string, m Meta) {
	c.meta.Add(key, metaEntry{meta: m, checked: c.now()})
	c.negative.Remove(key)
	if c.store != nil {
		c.store.Put(key, m)
	}
}

// Delete forgets key.
func (c *Cache) Delete(key string) {
	c.meta.Remove(key)
	if c.store != nil {
		c.store.Delete(key)
	}
}

// SetNegative records that key does not exist.
func (c *Cache) SetNegative(key string) { c.negative.Add(key, c.now()) }

// ClearNegative forgets that key did not exist.
func (c *Cache) ClearNegative(key string) { c.negative.Remove(key) }

// Negative reports whether key is known not to exist.
func (c *Cache) Negative(key string) bool {
	t, ok := c.negative.Get(key)
	return ok && c.now().Sub(t) < c.opts.NegativeTTL
}

// Listing returns dir's cached listing and whether it is within the TTL.
// A stale listing is still returned: callers may use it for decisions that
// need no freshness (such as whether a folder became empty).
func (c *Cache) Listing(dir string) (l *Listing, fresh bool) {
	l, ok := c.listings.Get(dir)
	if !ok {
		return nil, false
	}
	return l, l.age(c.now()) < c.opts.TTL
}

// ListingFor returns dir's cached listing for a lookup, and whether
// it answers it: within the TTL, or while a walk of the folder may go on
// (see walkPerEntry). One listing thus serves a whole walk of a folder
// of any size; its entries are revalidated by the next listing.
func (c *Cache) ListingFor(dir string) (l *Listing, fresh bool) {
	l, ok := c.listings.Get(dir)
	if !ok {
		return nil, false
	}
	return l, l.answers(c.now(), c.opts.TTL)
}

// Absent reports whether dir's listing, fetched within the negative TTL,
// shows that name does not exist. A listing proves absence as a HEAD that
// found nothing does, so it is trusted as long as a negative entry is,
// while the entries it shows are trusted only for the TTL.
func (c *Cache) Absent(dir, name string) bool {
	l, ok := c.listings.Get(dir)
	if !ok || l.age(c.now()) >= c.opts.NegativeTTL {
		return false
	}
	_, found := l.Get(name)
	return !found
}

// PutListing stores dir's listing.
func (c *Cache) PutListing(dir string, l *Listing) { c.listings.Add(dir, l) }

// DropListing forgets dir's listing, so that the next readdir asks again.
func (c *Cache) DropListing(dir string) { c.listings.Remove(dir) }

// DropTree forgets every listing, metadata and negative entry under prefix
// (used after a folder is moved or deleted).
func (c *Cache) DropTree(prefix string) {
	for _, k := range c.listings.Keys() {
		if strings.HasPrefix(k, prefix) {
			c.listings.Remove(k)
		}
	}
	for _, k := range c.negative.Keys() {
		if strings.HasPrefix(k, prefix) {
			c.negative.Remove(k)
		}
	}
}

// Now is the cache's clock.
func (c *Cache) Now() time.Time { return c.now() }

// NegativeTTL is the configured negative-entry TTL.
func (c *Cache) NegativeTTL() time.Duration { return c.opts.NegativeTTL }
