// Package share shapes the temporary links s3drive hands out for files in
// a mount: presigned S3 URLs that read a file, or write a new one, with no
// account, for as long as their expiry allows. It holds the rules a link
// obeys (how long it may live, how a browser names what it opens); the
// mount signs them.
package share

import (
	"fmt"
	"mime"
	"path"
	"strings"
	"time"
)

const (
	// DefaultExpiry is how long a link lives unless asked otherwise.
	DefaultExpiry = 24 * time.Hour
	// MaxExpiry is the longest a SigV4 presigned URL may live.
	MaxExpiry = 7 * 24 * time.Hour
)

// CheckExpiry says why ttl cannot be a link's lifetime, or nil.
func CheckExpiry(ttl time.Duration) error {
	switch {
	case ttl < time.Second:
		return fmt.Errorf("a link must live at least 1s (got %v)", ttl)
	case ttl > MaxExpiry:
		return fmt.Errorf("a link can live at most 168h (7 days, the limit of S3's signatures), not %v", ttl)
	}
	return nil
}

// Disposition is the Content-Disposition a download link's response
// carries, so that a browser names the file as the drive does: inline
// (shown if the browser can, saved under its name otherwise) or attachment
// (always saved). Names beyond ASCII are encoded as RFC 2231 says.
func Disposition(name string, attachment bool) string {
	kind := "inline"
	if attachment {
		kind = "attachment"
	}
	return mime.FormatMediaType(kind, map[string]string{"filename": name})
}

// ContentType is the type a browser should be told for name, or "" to
// leave the object's own (a name without a known extension).
func ContentType(name string) string {
	return mime.TypeByExtension(strings.ToLower(path.Ext(name)))
}
