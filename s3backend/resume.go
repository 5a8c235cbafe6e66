package s3backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// maxResumes bounds the resumptions of one GET body in a row without a
// byte read in between.
const maxResumes = 8

// resumingBody is a GET's body that, when the connection breaks mid-way
// (a reset, a proxy timing out), asks again from the byte reached, for the
// same version (If-Match), instead of failing the read. The SDK retries a
// request that fails, but not a body that breaks after the headers came.
type resumingBody struct {
	b    *S3
	ctx  context.Context
	done context.CancelFunc
	key  string
	off  int64
	left int64 // bytes still expected; < 0: to the end
	etag string
	body io.ReadCloser
	// failures in a row since the last byte read
	failures int
}

func (r *resumingBody) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if r.left > 0 && int64(len(p)) > r.left {
		p = p[:r.left]
	}
	for {
		n, err := r.body.Read(p)
		r.off += int64(n)
		if r.left > 0 {
			r.left -= int64(n)
		}
		if n > 0 {
			r.failures = 0
		}
		switch {
		case err == nil, err == io.EOF && r.left <= 0:
			return n, err
		case n > 0:
			return n, nil // the error comes back with the next Read
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if rerr := r.resume(err); rerr != nil {
			return 0, rerr
		}
	}
}

// resume replaces a broken body by a new GET from the offset reached.
func (r *resumingBody) resume(cause error) error {
	r.body.Close()
	r.body = io.NopCloser(errReader{cause})
	for {
		if r.ctx.Err() != nil {
			return r.b.wrap(r.ctx, "GET", r.key, cause)
		}
		r.failures++
		if r.failures > maxResumes {
			return r.b.wrap(r.ctx, "GET", r.key, fmt.Errorf("body broke %d times in a row: %w", maxResumes, cause))
		}
		r.b.cfg.Logger.Warn("GET interrupted; resuming", "key", r.key, "offset", r.off, "err", cause)
		delay, _ := backoff(r.failures, cause)
		select {
		case <-time.After(delay):
		case <-r.ctx.Done():
			continue
		}
		in := &s3.GetObjectInput{Bucket: &r.b.bucket, Key: aws.String(r.b.full(r.key)), IfMatch: quoteETag(r.etag),
			Range: aws.String(fmt.Sprintf("bytes=%d-", r.off))}
		if r.left > 0 {
			in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", r.off, r.off+r.left-1))
		}
		out, err := r.b.client.GetObject(r.ctx, in)
		if err == nil && !strings.HasPrefix(aws.ToString(out.ContentRange), fmt.Sprintf("bytes %d-", r.off)) {
			// A server that ignores Range would start over from byte 0.
			out.Body.Close()
			return r.b.wrap(r.ctx, "GET", r.key, fmt.Errorf("resumed at %d, answered %q", r.off, aws.ToString(out.ContentRange)))
		}
		if err == nil {
			r.body = out.Body
			return nil
		}
		if err := r.b.wrap(r.ctx, "GET", r.key, err); errors.Is(err, ErrPrecondition) || errors.Is(err, ErrNotFound) {
			return err // another version now: what was read cannot be continued
		}
		cause = err
	}
}

func (r *resumingBody) Close() error {
	err := r.body.Close()
	r.done()
	return err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
