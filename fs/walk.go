package fs

import (
	"context"
	"strings"

	"github.com/s3drive/s3drive/cache"
)

// walkListings bounds the folders listed ahead of a recursive walk at once.
const walkListings = 8

// listCall is one listing on its way, which later callers wait for
// instead of sending their own.
type listCall struct {
	done chan struct{}
	l    *cache.Listing
	err  error
}

// listShared lists dirKey whole, with the HEADs of entries never seen, or
// joins the listing of it already on its way.
func (f *FS) listShared(ctx context.Context, dirKey string) (*cache.Listing, error) {
	f.listMu.Lock()
	if c := f.listCalls[dirKey]; c != nil {
		f.listMu.Unlock()
		select {
		case <-c.done:
			return c.l, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &listCall{done: make(chan struct{})}
	f.listCalls[dirKey] = c
	f.listMu.Unlock()
	// Others may be waiting for it: an interrupted caller does not cancel it.
	c.l, _, c.err = f.fetchListing(context.WithoutCancel(ctx), dirKey, 0, true)
	f.listMu.Lock()
	delete(f.listCalls, dirKey)
	f.listMu.Unlock()
	close(c.done)
	return c.l, c.err
}

// walking notes a readdir of dirKey. Recursive walks (ls -lR, find, du,
// rsync, a file manager adding up a folder's size) read a folder, then its
// subfolders one after another, and each readdir waits for its LIST and
// for the HEADs of what it shows. When a readdir lands in a subfolder of a
// folder read just before, the walk is plain: the other subfolders are
// listed (and their entries HEADed) in the background, walkListings at a
// time and in the walker's order, so that it finds them ready.
func (f *FS) walking(dirKey string) {
	if dirKey == "" {
		return
	}
	parent, _ := splitKey(strings.TrimSuffix(dirKey, "/"))
	pl, fresh := f.cache.Listing(parent)
	if pl == nil || !fresh || !pl.EnterSubfolder() {
		return
	}
	var ahead []string
	for _, e := range pl.Entries() {
		sub := parent + e.Name + "/"
		if !e.Dir || sub == dirKey {
			continue
		}
		if _, fresh := f.cache.Listing(sub); !fresh {
			ahead = append(ahead, sub)
		}
	}
	go func() {
		for _, sub := range ahead {
			f.walkSlots <- struct{}{}
			go func() {
				defer func() { <-f.walkSlots }()
				if _, fresh := f.cache.Listing(sub); !fresh {
					f.listShared(context.Background(), sub)
				}
			}()
		}
	}()
}
