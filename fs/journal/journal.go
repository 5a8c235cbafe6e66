// Package journal records, beside the staging files in --cache-dir, what a
// mount holds that S3 does not have yet: for each staging file the key it
// belongs to, its size, attributes and the version it was based on, and
// every multipart upload in progress. A run that ends without unmounting
// (kill -9, OOM, power loss) leaves the journal to the next mount of the
// same folder, which finishes or reports each entry (fs.Recover).
//
// It is a bbolt file of its own, not a bucket of the metadata store: that
// store is a cache, rebuilt when unreadable, and this is not. Writes reach
// the file (and the page cache, which survives a killed process) before
// they return; Durable ones are also synced to disk, for data a program
// was told could not be uploaded.
package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var (
	stagedBucket  = []byte("staged")
	uploadsBucket = []byte("uploads")
)

// ErrLocked means another s3drive process has the journal open.
var ErrLocked = errors.New("journal is in use by another s3drive mount of the same folder")

// Entry describes one staging file.
type Entry struct {
	Stage  string `json:"stage"`  // staging file name, in the staging directory
	Source string `json:"source"` // s3://bucket[/prefix] of the mount
	Key    string `json:"key"`    // relative to the mount's root
	// Base is the ETag of the object the data was based on; "" for a
	// file created on the mount (no object was there).
	Base string `json:"base,omitempty"`
	// Maybe are versions the data replaces too, if S3 holds one of them
	// at Key: uploads whose answer never came, of this data or of the
	// file a rename put it over.
	Maybe       []string          `json:"maybe,omitempty"`
	Size        int64             `json:"size"`
	ContentType string            `json:"contentType,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// Closed: a close or fsync asked for the data to be uploaded, so the
	// next run finishes the upload. Without it the data was still being
	// written: it is kept and reported, never uploaded half-written.
	Closed bool `json:"closed"`
	// Released: bytes from the start that were uploaded as parts of a
	// stream and then freed from the staging file to make room; such an
	// entry cannot be uploaded by another run.
	Released int64 `json:"released,omitempty"`
	// Clean: S3 holds this content already (a file uploaded and still
	// open); nothing is left to do with it.
	Clean   bool      `json:"clean,omitempty"`
	Updated time.Time `json:"updated"`
}

// Upload is a multipart upload begun and not yet completed or aborted.
type Upload struct {
	Key string `json:"key"`
	ID  string `json:"id"`
}

// Journal is safe for concurrent use. A nil *Journal records nothing.
type Journal struct {
	db     *bolt.DB
	source string
}

// Open opens (creating) the journal at path for the mount of source.
func Open(path, source string) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 500 * time.Millisecond, NoSync: true, NoFreelistSync: true})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w (%s)", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening journal %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{stagedBucket, uploadsBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("initialising journal %s: %w", path, err)
	}
	return &Journal{db: db, source: source}, nil
}

// Record stores e, replacing any entry for the same staging file.
func (j *Journal) Record(e Entry) error {
	if j == nil {
		return nil
	}
	e.Source, e.Updated = j.source, time.Now().UTC()
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return j.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(stagedBucket).Put([]byte(e.Stage), v) })
}

// Durable is Record, synced to disk before it returns.
func (j *Journal) Durable(e Entry) error {
	if err := j.Record(e); err != nil || j == nil {
		return err
	}
	return j.db.Sync()
}

// Forget drops the entry of a staging file (its data is in S3, or
// discarded).
func (j *Journal) Forget(stage string) error {
	if j == nil {
		return nil
	}
	return j.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(stagedBucket).Delete([]byte(stage)) })
}

// Entries returns every staging file's entry.
func (j *Journal) Entries() ([]Entry, error) { return readAll[Entry](j, stagedBucket) }

// readAll decodes every value of a bucket.
func readAll[T any](j *Journal, bucket []byte) ([]T, error) {
	if j == nil {
		return nil, nil
	}
	var out []T
	err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var item T
			if err := json.Unmarshal(v, &item); err != nil {
				return fmt.Errorf("journal %s %q: %w", bucket, k, err)
			}
			out = append(out, item)
			return nil
		})
	})
	return out, err
}

// UploadStarted records a multipart upload in progress.
func (j *Journal) UploadStarted(key, id string) {
	if j == nil {
		return
	}
	v, _ := json.Marshal(Upload{Key: key, ID: id})
	_ = j.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(uploadsBucket).Put([]byte(id), v) })
}

// UploadEnded drops a multipart upload completed or aborted.
func (j *Journal) UploadEnded(key, id string) {
	if j == nil {
		return
	}
	_ = j.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(uploadsBucket).Delete([]byte(id)) })
}

// Uploads returns the multipart uploads recorded as in progress.
func (j *Journal) Uploads() ([]Upload, error) { return readAll[Upload](j, uploadsBucket) }

// Close syncs and closes the journal.
func (j *Journal) Close() error {
	if j == nil {
		return nil
	}
	_ = j.db.Sync()
	return j.db.Close()
}
