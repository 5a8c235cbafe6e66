package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sys/unix"
)

// Data keeps whole objects' content in files under one directory, so that
// a file read (or written) once is not fetched again, and so that the
// kernel can read it straight from local disk (FUSE passthrough). An entry
// is named by its key and ETag: an object another client changed has a new
// ETag and misses, never serving stale bytes. Entries beyond the byte limit
// are evicted least recently used first; deleting a file someone still
// has open is safe on Linux (the open file keeps its data).
//
// The cache shares its disk with staged writes, which come first: it
// keeps a free-space reserve on its filesystem (evicting before it would
// eat into it), its limit is at most what the disk can hold, and Release
// gives space back on demand when a write finds the disk full.
type Data struct {
	dir     string
	limit   int64
	reserve int64

	mu    sync.Mutex                    // protects the following
	lru   *simplelru.LRU[string, int64] // entry name → size
	byKey map[string]string             // key hash → entry name (one version per key)
	total int64

	tally Tally
}

// Tally counts opens of files found whole in the cache, and of those not.
func (d *Data) Tally() *Tally { return &d.tally }

const partSuffix = ".part"

// ErrNoRoom means an entry would not fit beside the free-space reserve.
var ErrNoRoom = errors.New("data cache: not enough free disk space")

// reserveFor is the free space kept on a filesystem of total bytes: an
// eighth, between 4 MiB and 2 GiB.
func reserveFor(total int64) int64 { return min(max(total/8, 4<<20), 2<<30) }

// diskSpace returns the size of dir's filesystem and the bytes free to
// this process.
func diskSpace(dir string) (total, free int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize, nil
}

// OpenData opens (creating) the data cache in dir with a limit in bytes. It
// indexes entries a previous run left, most recently modified last, and
// removes partial downloads.
func OpenData(dir string, limit int64) (*Data, error) {
	if limit <= 0 {
		return nil, errors.New("data cache: the size limit must be positive")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	lru, _ := simplelru.NewLRU[string, int64](math.MaxInt32, nil)
	d := &Data{dir: dir, limit: limit, lru: lru, byKey: map[string]string{}}
	if total, _, err := diskSpace(dir); err == nil && total > 0 {
		d.reserve = reserveFor(total)
		d.limit = max(min(limit, total-2*d.reserve), 0)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type found struct {
		name string
		info os.FileInfo
	}
	var whole []found
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), partSuffix) {
			os.Remove(filepath.Join(dir, e.Name()))
			continue
		}
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			whole = append(whole, found{e.Name(), info})
		}
	}
	sort.Slice(whole, func(i, j int) bool { return whole[i].info.ModTime().Before(whole[j].info.ModTime()) })
	d.mu.Lock()
	for _, f := range whole {
		d.addLocked(f.name, f.info.Size())
	}
	d.evictLocked()
	d.mu.Unlock()
	return d, nil
}

// Limit is the cache's size limit in bytes.
func (d *Data) Limit() int64 { return d.limit }

// name is the entry file name for key at etag.
func name(key, etag string) string {
	return keyHash(key) + "-" + hex.EncodeToString([]byte(etag))
}

func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// Open returns the whole cached content of key at etag, or false.
func (d *Data) Open(key, etag string) (*os.File, bool) {
	n := name(key, etag)
	d.mu.Lock()
	_, ok := d.lru.Get(n) // marks it recently used
	d.mu.Unlock()
	d.tally.note(ok)
	if !ok {
		return nil, false
	}
	f, err := os.Open(filepath.Join(d.dir, n))
	if err != nil {
		d.Forget(key)
		return nil, false
	}
	return f, true
}

// Fill is a cache entry being written.
type Fill struct {
	File      *os.File
	key, etag string
	size      int64
}

// Begin starts an entry of size bytes for key at etag: a sparse file the
// caller fills, then hands to Commit or Abort.
func (d *Data) Begin(key, etag string, size int64) (*Fill, error) {
	if size > d.limit || !d.makeRoom(size) {
		return nil, ErrNoRoom
	}
	f, err := os.CreateTemp(d.dir, name(key, etag)+"-*"+partSuffix)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &Fill{File: f, key: key, etag: etag, size: size}, nil
}

// Reserve allocates disk blocks for n bytes from off, about to be written.
// ext4 otherwise reserves each 4 KiB block as it is first written (delayed
// allocation): 16% of the daemon's CPU in a cold read. Best effort: where
// the file system cannot, the write allocates as before, and a full disk
// is reported by the write.
func (fl *Fill) Reserve(off, n int64) {
	_ = unix.Fallocate(int(fl.File.Fd()), unix.FALLOC_FL_KEEP_SIZE, off, n)
}

// Commit makes a filled entry available. The caller keeps its open file.
func (d *Data) Commit(fl *Fill) error {
	n := name(fl.key, fl.etag)
	if err := os.Rename(fl.File.Name(), filepath.Join(d.dir, n)); err != nil {
		os.Remove(fl.File.Name())
		return err
	}
	d.put(fl.key, n, fl.size)
	return nil
}

// Abort drops an entry that will not be completed, and closes its file.
func (d *Data) Abort(fl *Fill) {
	fl.File.Close()
	os.Remove(fl.File.Name())
}

// Adopt takes path, a finished file holding key's content at etag, into
// the cache by hard link (no copy; path may then be removed).
func (d *Data) Adopt(key, etag, path string, size int64) error {
	// The file's blocks are in use already; whether keeping them leaves
	// the reserve free is what counts.
	if size > d.limit || !d.makeRoom(0) {
		return nil
	}
	n := name(key, etag)
	target := filepath.Join(d.dir, n)
	os.Remove(target)
	if err := os.Link(path, target); err != nil {
		return err
	}
	d.put(key, n, size)
	return nil
}

// Forget drops whatever is cached for key (it was deleted or renamed).
func (d *Data) Forget(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.byKey[keyHash(key)]; ok {
		d.removeLocked(old)
	}
}

func (d *Data) put(key, n string, size int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.byKey[keyHash(key)]; ok && old != n {
		d.removeLocked(old)
	}
	d.addLocked(n, size)
	d.evictLocked()
}

func (d *Data) addLocked(n string, size int64) {
	if old, ok := d.lru.Peek(n); ok {
		d.total -= old
	}
	d.lru.Add(n, size)
	d.total += size
	if h, _, ok := strings.Cut(n, "-"); ok {
		d.byKey[h] = n
	}
}

func (d *Data) removeLocked(n string) {
	if size, ok := d.lru.Peek(n); ok {
		d.total -= size
		d.lru.Remove(n)
	}
	if h, _, ok := strings.Cut(n, "-"); ok && d.byKey[h] == n {
		delete(d.byKey, h)
	}
	os.Remove(filepath.Join(d.dir, n))
}

func (d *Data) evictLocked() {
	for d.total > d.limit {
		n, _, ok := d.lru.GetOldest()
		if !ok {
			return
		}
		d.removeLocked(n)
	}
}

// makeRoom evicts until the disk has need bytes free beyond the reserve,
// or the cache is empty; it reports whether that much is free.
func (d *Data) makeRoom(need int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		_, free, err := diskSpace(d.dir)
		if err != nil || free >= need+d.reserve {
			return true
		}
		n, _, ok := d.lru.GetOldest()
		if !ok {
			return false
		}
		d.removeLocked(n)
	}
}

// Release evicts entries, least recently used first, until n bytes are
// freed or none is left, for a staged write that found the disk full. It
// returns the bytes freed.
func (d *Data) Release(n int64) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var freed int64
	for freed < n {
		name, size, ok := d.lru.GetOldest()
		if !ok {
			break
		}
		d.removeLocked(name)
		freed += size
	}
	return freed
}

// Size is the bytes the cache holds.
func (d *Data) Size() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total
}
