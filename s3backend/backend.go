// Package s3backend is the only package that speaks S3. It defines the small,
// SDK-free Backend interface the filesystem is written against, implements it
// over aws-sdk-go-v2 (S3) and in memory (Memory, for fast unit tests), and
// counts every request it sends so tests and users can see what an operation
// cost.
//
// Keys given to and returned by a Backend are relative to the mount's root:
// the S3 implementation adds and strips the client-folder prefix, so nothing
// above this package can address a key outside that prefix.
package s3backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Sentinel errors; implementations wrap them so callers can use errors.Is.
var (
	ErrNotFound     = errors.New("object not found")
	ErrNoSuchBucket = errors.New("bucket does not exist")
	ErrAccessDenied = errors.New("access denied")
	// ErrBadCredentials: the server does not accept the credentials at
	// all (unknown key, wrong secret, expired token); it is also an
	// ErrAccessDenied.
	ErrBadCredentials = fmt.Errorf("credentials rejected: %w", ErrAccessDenied)
	ErrPrecondition   = errors.New("object changed (precondition failed)")
	ErrUnreachable    = errors.New("endpoint unreachable")
	ErrNoCredentials  = errors.New("no AWS credentials found")
	// ErrPlainHTTP: an https:// endpoint answered in plain HTTP.
	ErrPlainHTTP = errors.New("endpoint answers plain HTTP, not HTTPS")
	// ErrSpeaksTLS: an http:// endpoint answers TLS.
	ErrSpeaksTLS = errors.New("endpoint speaks HTTPS, not plain HTTP")
	// ErrBucketName: the server refuses the bucket's name.
	ErrBucketName = errors.New("invalid bucket name")
	// ErrNotImplemented: the server does not support a request or one of
	// its conditions (NotImplemented, or a request it calls malformed or
	// invalid: how some servers answer a header or field they do not know).
	ErrNotImplemented = errors.New("not implemented by the server")
)

// ObjectInfo describes one object. Metadata is only filled by Head (listings
// do not carry user metadata); its keys are lower-case and without the
// "x-amz-meta-" prefix.
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string // without surrounding quotes
	LastModified time.Time
	ContentType  string
	StorageClass string
	Metadata     map[string]string
}

// ListPage is one page of a ListObjectsV2 call.
type ListPage struct {
	Objects  []ObjectInfo
	Prefixes []string // common prefixes, each ending in the delimiter
	// NextToken is empty on the last page.
	NextToken string
}

// PutOptions are the headers an upload or a metadata-replacing copy sets.
type PutOptions struct {
	ContentType string
	Metadata    map[string]string
	// Cond is the version of the key the upload is based on (Upload; a
	// multipart upload's is given to Complete).
	Cond Conditions
}

// Conditions make a write fail with ErrPrecondition unless the key holds
// what the writer based it on: S3's conditional writes (If-Match and
// If-None-Match on PutObject, CompleteMultipartUpload and CopyObject).
// The zero value writes unconditionally.
type Conditions struct {
	IfMatch     string // the ETag the key must hold (without quotes)
	IfNoneMatch bool   // the key must hold nothing
	// SourceIfMatch is the ETag a copy's source must hold.
	SourceIfMatch string
}

// Any reports whether the key's state is a condition.
func (c Conditions) Any() bool { return c.IfMatch != "" || c.IfNoneMatch }

// Backend is what the filesystem needs from an object store.
type Backend interface {
	// Head returns an object's info and user metadata, or ErrNotFound.
	Head(ctx context.Context, key string) (ObjectInfo, error)
	// List returns one page of keys under prefix. With delimiter "/" it
	// returns the direct children: objects and common prefixes.
	List(ctx context.Context, prefix, delimiter, token string, maxKeys int) (ListPage, error)
	// Get reads length bytes from off (length < 0: to the end). If ifMatch is
	// not empty and the object's ETag differs, it fails with ErrPrecondition.
	Get(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, error)
	// Upload stores size bytes read from r as key: one PUT when small,
	// a parallel multipart upload otherwise. It returns only once the
	// store acknowledged the whole object.
	Upload(ctx context.Context, key string, r io.ReaderAt, size int64, opts PutOptions) (ObjectInfo, error)
	// StartMultipart begins an upload of key whose parts the caller sends
	// as the data arrives (a large file being written).
	StartMultipart(ctx context.Context, key string, opts PutOptions) (Multipart, error)
	// PartSize is the size of every multipart part but the last; Upload
	// sends anything up to it in one PUT.
	PartSize() int64
	// PartsInFlight is how many parts one upload keeps in flight.
	PartsInFlight() int
	// Copy copies src to dst, if dst and src hold what cond says. With
	// opts nil the metadata is copied; otherwise it is replaced by opts (how
	// attributes are changed in place).
	Copy(ctx context.Context, src, dst string, size int64, opts *PutOptions, cond Conditions) (ObjectInfo, error)
	// Delete removes keys, in batches where the store supports it. Deleting
	// a missing key is not an error.
	Delete(ctx context.Context, keys ...string) error
	// Remove deletes each key only if it still holds the version named by
	// its ETag (If-Match; no ETag: whatever it holds). Keys the store kept
	// because they changed are returned, not reported as an error: a newer
	// version, written by anyone, survives a removal queued before it.
	Remove(ctx context.Context, removals []Removal) (kept []string, err error)
	// MaxKeyLen is the longest key, relative to the mount's root, the store
	// accepts (S3: 1,024 bytes with the prefix).
	MaxKeyLen() int
	// AbortUpload discards a multipart upload (one a previous run left
	// open); an upload the store no longer knows is not an error.
	AbortUpload(ctx context.Context, key, id string) error
	// Offline reports whether the store stopped answering: its last
	// request got no response at all, and none has since.
	Offline() bool
	// Presign returns a temporary URL that reads key (or, with
	// Link.Upload, writes it) without credentials, signed with the
	// mount's own. It sends no request.
	Presign(ctx context.Context, key string, link Link) (string, error)
	// Counters reports how many requests of each kind were sent.
	Counters() map[string]int64
}

// Link shapes a presigned URL.
type Link struct {
	Upload bool          // PUT instead of GET
	TTL    time.Duration // how long the URL works (SigV4: at most 7 days)
	// ContentType and ContentDisposition override the object's headers in
	// a GET's response (response-content-type, response-content-disposition),
	// so that a browser shows or saves it under its name.
	ContentType, ContentDisposition string
}

// Removal is one key to delete, and the version it is meant to delete.
type Removal struct {
	Key  string
	ETag string // without quotes; empty: any version
}

// anyVersion is the removals of keys, whatever version they hold.
func anyVersion(keys []string) []Removal {
	removals := make([]Removal, len(keys))
	for i, k := range keys {
		removals[i] = Removal{Key: k}
	}
	return removals
}

// MaxKey is S3's limit on a key's length in bytes.
const MaxKey = 1024

// Multipart is a multipart upload fed part by part. Parts may be sent
// concurrently and in any order; every part but the last must be the
// backend's PartSize.
type Multipart interface {
	// Part uploads part num (from 1): n bytes of r from off.
	Part(ctx context.Context, num int32, r io.ReaderAt, off, n int64) error
	// Complete assembles the parts sent into the object, if the key holds
	// what cond says. On a refused condition (ErrPrecondition) the upload
	// stays open, to be completed with other conditions or aborted; on any
	// other failure it is aborted.
	Complete(ctx context.Context, cond Conditions) (ObjectInfo, error)
	// Abort discards the parts sent.
	Abort()
}

// Plain is err's cause in a few words, without the SDK's wrapping
// (operation error, attempts, request IDs): the server's error code and
// message, the network's errno, or the status of an answer without a body.
func Plain(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if msg := apiErr.ErrorMessage(); msg != "" {
			return apiErr.ErrorCode() + ": " + msg
		}
		return apiErr.ErrorCode()
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		return fmt.Sprintf("HTTP %d", respErr.HTTPStatusCode())
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr.Op + ": " + opErr.Err.Error()
	}
	return err.Error()
}
