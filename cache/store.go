package cache

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var metaBucket = []byte("meta")

// Store is the persistent half of the metadata cache: a bbolt file mapping
// keys to Meta. It is a cache, not a source of truth, so it trades
// durability for speed (no fsync per write) and a store that cannot be read
// is discarded and rebuilt rather than failing the mount.
//
// Writes are queued and committed by one background writer in batches, so a
// caller never waits for the disk: cp -r of a thousand files must not pay a
// transaction per file.
type Store struct {
	db *bolt.DB

	mu      sync.Mutex       // protects the following
	pending map[string]*Meta // nil value: delete
	wake    chan struct{}
	closed  chan struct{}
	done    chan struct{}
}

const storeFlushEvery = 100 * time.Millisecond

// ErrStoreLocked means another s3drive process has the store open.
var ErrStoreLocked = errors.New("metadata store is in use by another s3drive mount")

// OpenStore opens or creates the store at path.
func OpenStore(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating metadata store directory: %w", err)
	}
	opts := &bolt.Options{Timeout: 500 * time.Millisecond, NoSync: true, NoFreelistSync: true}
	db, err := bolt.Open(path, 0o600, opts)
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w (%s)", ErrStoreLocked, path)
	}
	if err != nil {
		slog.Warn("metadata store unreadable, starting a new one", "path", path, "err", err)
		if rmErr := os.Remove(path); rmErr != nil {
			return nil, fmt.Errorf("opening metadata store: %w", err)
		}
		if db, err = bolt.Open(path, 0o600, opts); err != nil {
			return nil, fmt.Errorf("opening metadata store: %w", err)
		}
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(metaBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("initialising metadata store: %w", err)
	}
	s := &Store{db: db, pending: map[string]*Meta{}, wake: make(chan struct{}, 1),
		closed: make(chan struct{}), done: make(chan struct{})}
	go s.writer()
	return s, nil
}

func (s *Store) writer() {
	defer close(s.done)
	tick := time.NewTicker(storeFlushEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-s.wake:
		case <-s.closed:
			s.flush()
			return
		}
		s.flush()
	}
}

// flush commits every queued write in one transaction.
func (s *Store) flush() {
	s.mu.Lock()
	batch := s.pending
	if len(batch) == 0 {
		s.mu.Unlock()
		return
	}
	s.pending = map[string]*Meta{}
	s.mu.Unlock()
	keys := make([]string, 0, len(batch))
	for k := range batch {
		keys = append(keys, k)
	}
	// In key order, into pages filled further than bbolt's default half:
	// a folder's entries arrive together, in order, and are rarely
	// rewritten, so most pages are written once, full.
	slices.Sort(keys)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(metaBucket)
		b.FillPercent = 0.9
		for _, k := range keys {
			if m := batch[k]; m == nil {
				if err := b.Delete([]byte(k)); err != nil {
					return err
				}
			} else if err := b.Put([]byte(k), encodeStored(m)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		slog.Warn("metadata store write failed; entries will be refetched", "entries", len(batch), "err", err)
	}
}

// rootKey stands for the empty key (the mount's root) in the database,
// which takes no empty keys. No object of a mount has it: it would be a
// folder with an empty name.
const rootKey = "/"

func dbKey(key string) string {
	if key == "" {
		return rootKey
	}
	return key
}

func (s *Store) queue(key string, m *Meta) {
	key = dbKey(key)
	s.mu.Lock()
	s.pending[key] = m
	n := len(s.pending)
	s.mu.Unlock()
	if n >= 1000 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Get reads key's entry.
func (s *Store) Get(key string) (Meta, bool) {
	key = dbKey(key)
	s.mu.Lock()
	p, queued := s.pending[key]
	s.mu.Unlock()
	if queued {
		if p == nil {
			return Meta{}, false
		}
		return *p, true
	}
	var m Meta
	found := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(metaBucket).Get([]byte(key)); v != nil {
			var err error
			m, err = decodeStored(v)
			found = err == nil
		}
		return nil
	})
	return m, found
}

// Put queues key's entry for writing.
func (s *Store) Put(key string, m Meta) { s.queue(key, &m) }

// Delete queues the removal of key's entry.
func (s *Store) Delete(key string) { s.queue(key, nil) }

// Close flushes and closes the store.
func (s *Store) Close() error {
	close(s.closed)
	<-s.done
	_ = s.db.Sync()
	return s.db.Close()
}
