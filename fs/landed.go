package fs

import (
	"sync"
	"time"
)

// landedKeys remembers, for a while, which keys this mount's uploads and
// moves created and when, by folder. A readdir whose listing was asked
// for before one of them landed shows it anyway: the file existed here
// before (it was created, then waited for its upload — always, under
// write-back), and may already have left localIn by the time the listing
// ends.
type landedKeys struct {
	mu     sync.Mutex
	byDir  map[string]map[string]time.Time // dirKey → name → when it landed
	pruned time.Time
}

// landedKeep is how long a key is remembered: the longest a listing serves
// a walk (see cache.Listing's walk budget).
const landedKeep = 10 * time.Minute

func (k *landedKeys) add(dirKey, name string, at time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.byDir == nil {
		k.byDir = map[string]map[string]time.Time{}
	}
	if at.Sub(k.pruned) > landedKeep {
		for dir, names := range k.byDir {
			for n, t := range names {
				if at.Sub(t) > landedKeep {
					delete(names, n)
				}
			}
			if len(names) == 0 {
				delete(k.byDir, dir)
			}
		}
		k.pruned = at
	}
	names := k.byDir[dirKey]
	if names == nil {
		names = map[string]time.Time{}
		k.byDir[dirKey] = names
	}
	names[name] = at
}

// since returns the names in dirKey that landed after t.
func (k *landedKeys) since(dirKey string, t time.Time) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for name, at := range k.byDir[dirKey] {
		if at.After(t) {
			out = append(out, name)
		}
	}
	return out
}
