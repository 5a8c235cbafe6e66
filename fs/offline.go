package fs

import (
	"errors"
	"syscall"

	"github.com/s3drive/s3drive/cache"
	"github.com/s3drive/s3drive/s3backend"
)

// While S3 does not answer (refused, or silent past the timeout), lookups
// and folder reads are answered from what the mount holds, however old:
// a person browsing is better served by a stale listing than by EIO. The
// backend notices the outage (Offline) and logs its start and end once;
// until it ends such calls do not wait for S3 at all. Files whole in the
// data cache open and read as ever; writes still go to S3, and fail.

// outage reports whether err means S3 could not be reached, as opposed to
// an answer from it.
func (f *FS) outage(err error) bool {
	return err != nil && (errors.Is(err, s3backend.ErrTimeout) || errors.Is(err, s3backend.ErrUnreachable) || f.be.Offline())
}

// resolveOffline answers a lookup from the caches alone. ok is false when
// they know nothing of the name. What this mount made or learnt of the
// name itself comes first: a listing, however old, may predate it.
func (f *FS) resolveOffline(dirKey, name string) (res resolved, err error, ok bool) {
	key := childKey(dirKey, name)
	if m, pending := f.pendingMarker(key + "/"); pending {
		return resolved{kind: kindDir, meta: m}, nil, true
	}
	if m, known := f.cache.Known(key + "/"); known {
		return resolved{kind: kindDir, meta: m}, nil, true
	}
	if m, known := f.cache.Known(key); known {
		return resolved{kind: kindOf(m), meta: m}, nil, true
	}
	if l, _ := f.cache.Listing(dirKey); l != nil {
		e, listed := l.Get(name)
		switch {
		case !listed:
			return resolved{}, syscall.ENOENT, true
		case e.Dir:
			m, _ := f.cache.Known(key + "/")
			return resolved{kind: kindDir, meta: m}, nil, true
		}
		m := cache.Meta{Size: e.Size, ETag: e.ETag, LastModified: e.LastModified}
		return resolved{kind: kindOf(m), meta: m}, nil, true
	}
	if f.cache.Negative(key) {
		return resolved{}, syscall.ENOENT, true
	}
	return resolved{}, nil, false
}
