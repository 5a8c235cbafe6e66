package fs

import (
	"strings"
	"sync"

	"github.com/s3drive/s3drive/cache"
)

// A program walking a folder (ls -l, rsync, find with -size, a file manager)
// looks up its entries one after another, in name order, and each lookup of
// an object never seen waits for a HEAD. Once two lookups in one listing
// needed a HEAD, a scan HEADs the entries after the walker's position in
// the background, scanWindow ahead of it, so that each lookup finds its
// answer on the way. The window moves with the walker: a folder of any size
// costs at most scanWindow HEADs in flight or waiting, and a reader that
// wants only names (ls -f, counting entries) sends none at all.
const (
	scanAfter  = 2
	scanWindow = 256
)

// scan is the walk of one listing, kept with it (cache.Listing.Walker).
type scan struct {
	l      *cache.Listing
	dirKey string

	mu sync.Mutex // protects next
	// next: the last entry sent for (or passed over); "" before the first.
	next string
}

// scanning notes a lookup of name in the listing l of dirKey; miss says
// it needed a HEAD. The second miss starts a scan; every lookup after that
// moves it along.
func (f *FS) scanning(l *cache.Listing, dirKey, name string, miss bool) {
	w := l.Walker(func() any {
		if !miss || l.Missed() < scanAfter {
			return nil
		}
		return &scan{l: l, dirKey: dirKey}
	})
	if w == nil {
		return
	}
	for _, key := range w.(*scan).advance(name, f.cache) {
		if strings.HasSuffix(key, "/") && !l.HasMarker() {
			f.prefetchMarker(key) // a folder in a folder without a marker
			continue
		}
		f.prefetch(key)
	}
}

// advance moves the window to just after name and returns the keys of the
// entries it newly covers that need a HEAD. Entries the walker jumped over
// are left to their own lookups.
func (s *scan) advance(name string, c *cache.Cache) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ahead := s.l.Ahead(name, s.next, scanWindow)
	if len(ahead) == 0 {
		return nil
	}
	s.next = ahead[len(ahead)-1].Name
	var keys []string
	for _, e := range ahead {
		key := childKey(s.dirKey, e.Name)
		if e.Dir {
			key += "/"
			if _, ok := c.Known(key); ok {
				continue
			}
		} else if _, ok := c.Match(key, e.Observed); ok {
			continue
		}
		keys = append(keys, key)
	}
	return keys
}

// prefetch HEADs key in the background, at most HeadConcurrency at a time.
// The call is registered before it waits for a slot, so a lookup of key
// that comes first waits for it rather than sending its own.
func (f *FS) prefetch(key string) {
	call, owner := f.headCallFor(key)
	if call == nil || !owner {
		return
	}
	go func() {
		f.headSlots <- struct{}{}
		defer func() { <-f.headSlots }()
		f.runHead(call, key)
	}()
}
