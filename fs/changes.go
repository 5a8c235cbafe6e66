package fs

import (
	"hash/maphash"
	"strings"
	"sync"
)

// changeClock orders what a request learned against changes this mount
// made meanwhile. A listing, HEAD or negative answer describes S3 as it
// was when the request was sent; if the mount changed the folder while it
// was on its way (a rename, an upload, a removal), caching that answer
// would bring back a name just removed or hide one just made. So every
// change ticks its folder's clock, after S3 has it and before the caches
// are updated, and an answer is cached only if the clock has not moved
// since its request was sent.
//
// Folders share clocks by hash: a tick in one may make an answer about
// another go uncached, which costs a request later, never a wrong answer.
type changeClock struct {
	seed    maphash.Seed
	stripes [256]struct {
		mu sync.Mutex
		n  uint64
	}
}

func newChangeClock() *changeClock { return &changeClock{seed: maphash.MakeSeed()} }

func (c *changeClock) stripe(dirKey string) int {
	return int(maphash.String(c.seed, dirKey) % uint64(len(c.stripes)))
}

// now reads dirKey's clock before a request about it is sent.
func (c *changeClock) now(dirKey string) uint64 {
	s := &c.stripes[c.stripe(dirKey)]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// tick records a change in dirKey ("" for the root, else "a/b/").
func (c *changeClock) tick(dirKey string) {
	s := &c.stripes[c.stripe(dirKey)]
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
}

// tickKey records a change of key (a file, or a folder's marker "a/b/")
// in its parent folder.
func (c *changeClock) tickKey(key string) { c.tick(parentOf(key)) }

// keep runs put, which caches an answer about dirKey, only if dirKey has
// not changed since before, and reports whether it did. A change cannot
// slip between the check and the put.
func (c *changeClock) keep(dirKey string, before uint64, put func()) bool {
	s := &c.stripes[c.stripe(dirKey)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n != before {
		return false
	}
	put()
	return true
}

// parentOf is the folder holding key: "a/" for "a/b" and for "a/b/".
func parentOf(key string) string {
	dir, _ := splitKey(strings.TrimSuffix(key, "/"))
	return dir
}
