package s3backend

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Multipart uploads: whole files above the part size (Upload), files fed
// part by part while they are written (StartMultipart), copies above 5 GiB,
// and the aborts of uploads that failed or that a previous run left open.

// PartSizeFor returns the part size for an upload of size bytes: base, or
// larger (whole MiB) where base would need more than S3's 10,000 parts.
func PartSizeFor(size, base int64) int64 {
	if size <= base*maxParts {
		return base
	}
	const mib = 1 << 20
	p := (size + maxParts - 1) / maxParts
	return (p + mib - 1) / mib * mib
}

type partFunc func(ctx context.Context, u *s3Multipart, num int32, off, n int64) (etag string, err error)

// multipart runs a multipart upload whose parts are produced by part, at
// most PartsInFlight at once per object and MaxConns across the backend. Any
// failure aborts the upload so no orphaned parts are billed.
func (b *S3) multipart(ctx context.Context, key string, opts PutOptions, size, partSize int64, part partFunc) (ObjectInfo, error) {
	u, err := b.startMultipart(ctx, key, opts)
	if err != nil {
		return ObjectInfo{}, err
	}
	nparts := int((size + partSize - 1) / partSize)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		perFile  = make(chan struct{}, b.cfg.PartsInFlight)
	)
	for i := 0; i < nparts && ctx.Err() == nil; i++ {
		off := int64(i) * partSize
		n := min(partSize, size-off)
		perFile <- struct{}{}
		b.slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-b.slots; <-perFile; wg.Done() }()
			etag, err := part(ctx, u, int32(i+1), off, n)
			if err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
				return
			}
			u.add(int32(i+1), etag, n)
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		u.Abort()
		return ObjectInfo{}, b.wrap(ctx, "multipart part", key, firstErr)
	}
	info, err := u.Complete(ctx, opts.Cond)
	if errors.Is(err, ErrPrecondition) {
		u.Abort() // the data is the caller's to put elsewhere
	}
	return info, err
}

// s3Multipart is one multipart upload in progress.
type s3Multipart struct {
	b    *S3
	key  string
	id   *string
	opts PutOptions

	mu    sync.Mutex // protects parts and size
	parts []types.CompletedPart
	size  int64
}

func (b *S3) StartMultipart(ctx context.Context, key string, opts PutOptions) (Multipart, error) {
	ctx, done := b.bound(ctx, 0)
	defer done()
	return b.startMultipart(ctx, key, opts)
}

func (b *S3) startMultipart(ctx context.Context, key string, opts PutOptions) (*s3Multipart, error) {
	created, err := b.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &b.bucket, Key: aws.String(b.full(key)),
		ContentType: nonEmpty(opts.ContentType), Metadata: opts.Metadata,
	})
	if err != nil {
		return nil, b.wrap(ctx, "multipart create", key, err)
	}
	if b.cfg.Uploads != nil {
		b.cfg.Uploads.UploadStarted(key, aws.ToString(created.UploadId))
	}
	return &s3Multipart{b: b, key: key, id: created.UploadId, opts: opts}, nil
}

func (b *S3) PartSize() int64    { return b.cfg.PartSize }
func (b *S3) PartsInFlight() int { return b.cfg.PartsInFlight }

func (u *s3Multipart) add(num int32, etag string, n int64) {
	u.mu.Lock()
	u.parts = append(u.parts, types.CompletedPart{ETag: aws.String(etag), PartNumber: aws.Int32(num)})
	u.size += n
	u.mu.Unlock()
}

func (u *s3Multipart) Part(ctx context.Context, num int32, r io.ReaderAt, off, n int64) error {
	u.b.slots <- struct{}{}
	defer func() { <-u.b.slots }()
	ctx, done := u.b.bound(ctx, 0)
	defer done()
	etag, err := u.sendPart(ctx, num, r, off, n)
	if err != nil {
		return u.b.wrap(ctx, "multipart part", u.key, err)
	}
	u.add(num, etag, n)
	return nil
}

// sendPart uploads n bytes of r from off as part num and returns its ETag.
func (u *s3Multipart) sendPart(ctx context.Context, num int32, r io.ReaderAt, off, n int64) (string, error) {
	b := u.b
	out, err := b.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &b.bucket, Key: aws.String(b.full(u.key)), UploadId: u.id,
		PartNumber: aws.Int32(num), Body: io.NewSectionReader(r, off, n), ContentLength: aws.Int64(n),
	}, b.bodyOpts...)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

func (u *s3Multipart) Complete(ctx context.Context, cond Conditions) (ObjectInfo, error) {
	u.mu.Lock()
	parts := slices.Clone(u.parts)
	size := u.size
	u.mu.Unlock()
	slices.SortFunc(parts, func(a, b types.CompletedPart) int {
		return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber))
	})
	// The server assembles the parts before it answers.
	ctx, end := u.b.bound(ctx, silentWork(size))
	defer end()
	if err := u.b.emulate(ctx, u.key, cond, u.b.putIgnoresConditions.Load()); err != nil {
		return ObjectInfo{}, err
	}
	done, err := u.b.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &u.b.bucket, Key: aws.String(u.b.full(u.key)), UploadId: u.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		IfMatch:         quoteETag(cond.IfMatch), IfNoneMatch: ifNoneMatch(cond),
	})
	if err != nil {
		err = u.b.wrap(ctx, "multipart complete", u.key, err)
		if !errors.Is(err, ErrPrecondition) {
			u.Abort()
		}
		return ObjectInfo{}, err
	}
	u.ended()
	return ObjectInfo{Key: u.key, Size: size, ETag: trimETag(aws.ToString(done.ETag)),
		ContentType: u.opts.ContentType, Metadata: u.opts.Metadata}, nil
}

// Abort runs on its own context: the caller's may be the one cancelled.
// An abort that fails (the server is down) is retried in the background;
// one still open when the process ends is aborted by the next run, from
// the journal.
func (u *s3Multipart) Abort() {
	err := u.b.AbortUpload(context.Background(), u.key, aws.ToString(u.id))
	if err == nil {
		u.ended()
		return
	}
	u.b.cfg.Logger.Warn("abort multipart upload failed; retrying in the background", "key", u.key, "err", err)
	go func() {
		for delay := time.Second; ; delay = min(delay*2, time.Minute) {
			time.Sleep(delay)
			if err := u.b.AbortUpload(context.Background(), u.key, aws.ToString(u.id)); err == nil {
				u.ended()
				return
			}
		}
	}()
}

func (u *s3Multipart) ended() {
	if u.b.cfg.Uploads != nil {
		u.b.cfg.Uploads.UploadEnded(u.key, aws.ToString(u.id))
	}
}

// AbortUpload discards the multipart upload id of key. One the server no
// longer knows is not an error.
func (b *S3) AbortUpload(ctx context.Context, key, id string) error {
	ctx, done := b.bound(ctx, 0)
	defer done()
	_, err := b.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: &b.bucket, Key: aws.String(b.full(key)), UploadId: aws.String(id),
	})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchUpload" {
		return nil
	}
	return b.wrap(ctx, "multipart abort", key, err)
}

// silentWork is how long a server may work on size bytes before it
// answers (assembling parts, copying): at 32 MiB/s, on top of the timeout.
func silentWork(size int64) time.Duration {
	return time.Duration(size/(32<<20)) * time.Second
}
