package s3backend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// Config says which bucket and folder to reach, and how.
type Config struct {
	Bucket string
	// Prefix is the client folder inside the bucket ("clients/acme"), without
	// leading or trailing slash; empty for the whole bucket.
	Prefix   string
	Endpoint string // custom S3-compatible endpoint; empty for AWS
	Region   string // overrides the AWS config chain's region
	Profile  string // shared-config profile; empty for the default chain
	// CredentialsFile replaces ~/.aws/credentials (an fstab mount's
	// credentials, readable by root alone).
	CredentialsFile string
	// PathStyle forces path-style addressing; with a custom endpoint it is
	// the default, since most S3-compatible servers lack virtual hosts.
	PathStyle bool
	// MaxConns bounds requests in flight to the endpoint (default 64).
	MaxConns int
	// PartSize is the multipart part size (default 16 MiB); uploads at or
	// below it are one PutObject.
	PartSize int64
	// PartsInFlight bounds parallel part uploads per object (default 8).
	PartsInFlight int
	// MaxAttempts is the SDK retry limit per request (default 10): with
	// backoff from 50 ms, enough to ride out a throttling server.
	MaxAttempts int
	// Timeout is how long an operation may go without progress before it
	// fails with ErrTimeout (default DefaultTimeout).
	Timeout time.Duration
	// Uploads, if set, learns of every multipart upload begun and ended,
	// so that one a crash left open can be aborted by the next run.
	Uploads UploadTracker
	// Observer, if set, learns of every request (metrics).
	Observer Observer
	Logger   *slog.Logger
}

// UploadTracker records multipart uploads in progress (a journal).
type UploadTracker interface {
	UploadStarted(key, id string)
	UploadEnded(key, id string)
}

const (
	defaultPartSize = 16 << 20
	maxParts        = 10000
	maxCopySize     = 5 << 30 // CopyObject's limit; larger copies go part by part
	copyPartSize    = 512 << 20
	deleteBatch     = 1000
)

// S3 is the Backend over aws-sdk-go-v2.
type S3 struct {
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
	prefix  string // "" or "clients/acme/"
	cfg     Config
	count   counters
	// slots bounds parallel part uploads and copies across all objects.
	slots chan struct{}
	// bodyOpts are the options of requests that carry object data.
	bodyOpts []func(*s3.Options)
	wire     *countingTransport
	// putIgnoresConditions and copyIgnoresConditions: the server was found
	// (ProbeConditions) to ignore conditional writes, which are then
	// checked by a HEAD first.
	putIgnoresConditions, copyIgnoresConditions atomic.Bool
}

var _ Backend = (*S3)(nil)

// New builds a client from the standard AWS configuration chain
// (environment, shared files and profiles, SSO, instance and container
// roles) plus cfg. It sends no request.
func New(ctx context.Context, cfg Config) (*S3, error) {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 64
	}
	if cfg.PartSize <= 0 {
		cfg.PartSize = defaultPartSize
	}
	if cfg.PartSize < 5<<20 {
		return nil, fmt.Errorf("part size %d is below S3's 5 MiB minimum", cfg.PartSize)
	}
	if cfg.PartsInFlight <= 0 {
		cfg.PartsInFlight = 8
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &S3{bucket: cfg.Bucket, cfg: cfg, slots: make(chan struct{}, cfg.MaxConns)}
	if p := strings.Trim(cfg.Prefix, "/"); p != "" {
		b.prefix = p + "/"
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			// No client-side retry token bucket: with dozens of parallel
			// requests it turns a few server errors into local failures.
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.MaxAttempts
				o.RateLimiter = ratelimit.None
				// The SDK waits a second or more after each throttling
				// answer: cp -r under 30% SlowDown took 190 times as long.
				// The congestion window is what slows the mount down.
				o.Backoff = retry.BackoffDelayerFunc(backoff)
				// Once the server is known down (a refused connection, a
				// timeout), asking again only delays the answer the mount
				// gives meanwhile: stale data for a lookup, EIO and a
				// background retry for an upload.
				o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
					if b.Offline() {
						return aws.FalseTernary
					}
					if plainHTTP(err) || errors.Is(err, ErrSpeaksTLS) {
						return aws.FalseTernary // asking again changes nothing
					}
					return aws.UnknownTernary
				})}, o.Retryables...)
			})
		}),
		// The 2025 SDK default adds CRC trailers that several S3-compatible
		// servers reject; checksums are sent only where S3 requires them.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		// The SDK's own warnings go where the mount's lines go, in its
		// format, rather than to standard error in the SDK's.
		config.WithLogger(logging.LoggerFunc(func(class logging.Classification, format string, v ...any) {
			msg := fmt.Sprintf(format, v...)
			level := slog.LevelDebug
			// The credential chain's probe of the EC2 metadata service
			// warns on every machine that is not an EC2 instance; when no
			// credentials are found the mount says so in one line.
			if class == logging.Warn && !strings.Contains(msg, "IMDS") {
				level = slog.LevelWarn
			}
			cfg.Logger.Log(context.Background(), level, msg, "from", "aws-sdk")
		})),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.CredentialsFile != "" {
		if _, err := os.Stat(cfg.CredentialsFile); err != nil {
			return nil, fmt.Errorf("credentials file: %w", err)
		}
		opts = append(opts, config.WithSharedCredentialsFiles([]string{cfg.CredentialsFile}))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		// Custom endpoints rarely care about the region, but SigV4 needs one.
		awsCfg.Region = "us-east-1"
	}
	b.wire = &countingTransport{count: &b.count, obs: cfg.Observer, log: cfg.Logger, cong: newCongestion(cfg.MaxConns),
		health: &health{log: cfg.Logger, probe: b.probe}}
	httpClient, err := newHTTPClient(cfg.MaxConns, b.wire)
	if err != nil {
		return nil, err
	}
	b.client = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		// Set here, not in the config chain, so credential providers keep
		// the SDK's own client and only S3 requests are counted.
		o.HTTPClient = httpClient
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle || cfg.Endpoint != ""
	})
	b.presign = s3.NewPresignClient(b.client)
	if loopbackHTTP(cfg.Endpoint) {
		// SigV4 hashes the body so that nobody on the way can change it; the
		// SDK skips that on TLS, which already guarantees it, and nobody is
		// on the way to a loopback address either. Hashing costs the client
		// and the server a SHA-256 pass over every byte: half the CPU of an
		// upload on a small machine.
		b.bodyOpts = []func(*s3.Options){s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)}
	}
	return b, nil
}

// loopbackHTTP reports whether endpoint is plain HTTP to this machine.
func loopbackHTTP(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "http" {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// Check verifies with one small listing that the endpoint answers, the
// credentials are accepted and the bucket exists. Its error says which;
// a silent server fails it within the timeout.
func (b *S3) Check(ctx context.Context) error {
	b.wire.health.checking.Store(true)
	defer b.wire.health.checking.Store(false)
	_, err := b.List(ctx, "", "/", "", 1)
	return err
}

// speaksTLS reports whether the server at host (HOST:PORT), asked in plain
// HTTP, answers a TLS handshake instead: the mirror of ErrPlainHTTP, which
// a TLS server shows only as connections reset.
func speaksTLS(host string) bool {
	// Only the protocol is in question, not who the server is: no
	// certificate check, and nothing is sent after the handshake.
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", host,
		&tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// probe asks whether the server answers (see health).
func (b *S3) probe(ctx context.Context) error {
	_, err := b.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &b.bucket,
		Prefix: aws.String(b.prefix), Delimiter: aws.String("/"), MaxKeys: aws.Int32(1)})
	return err
}

// Offline reports whether the endpoint stopped answering: the last request
// got no response and none has since.
func (b *S3) Offline() bool { return b.wire.health.down.Load() }

// InFlightLimit is the congestion window: requests the server is trusted
// with at once (MaxConns until it throttles).
func (b *S3) InFlightLimit() int { return b.wire.cong.current() }

// backoff is full jitter from 50 ms, doubling to a 5 s cap.
func backoff(attempt int, _ error) (time.Duration, error) {
	ceiling := min(50*time.Millisecond<<min(attempt-1, 7), 5*time.Second)
	return rand.N(ceiling) + time.Millisecond, nil
}

func (b *S3) full(key string) string { return b.prefix + key }

func (b *S3) rel(key string) string { return strings.TrimPrefix(key, b.prefix) }

func (b *S3) Counters() map[string]int64 { return b.count.snapshot() }

// Errors reports how many requests of each kind failed: throttled,
// denied, unanswered or refused (not a 404 or a refused condition, which
// are answers).
func (b *S3) Errors() map[string]int64 { return b.count.errorsSnapshot() }

func (b *S3) Head(ctx context.Context, key string) (ObjectInfo, error) {
	ctx, done := b.bound(ctx, 0)
	defer done()
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: aws.String(b.full(key))})
	if err != nil {
		return ObjectInfo{}, b.wrap(ctx, "HEAD", key, err)
	}
	return ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         trimETag(aws.ToString(out.ETag)),
		LastModified: aws.ToTime(out.LastModified),
		ContentType:  aws.ToString(out.ContentType),
		StorageClass: string(out.StorageClass),
		Metadata:     lowerKeys(out.Metadata),
	}, nil
}

func (b *S3) List(ctx context.Context, prefix, delimiter, token string, maxKeys int) (ListPage, error) {
	ctx, done := b.bound(ctx, 0)
	defer done()
	in := &s3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: aws.String(b.full(prefix))}
	if delimiter != "" {
		in.Delimiter = aws.String(delimiter)
	}
	if token != "" {
		in.ContinuationToken = aws.String(token)
	}
	if maxKeys > 0 {
		in.MaxKeys = aws.Int32(int32(maxKeys))
	}
	out, err := b.client.ListObjectsV2(ctx, in)
	if err != nil {
		return ListPage{}, b.wrap(ctx, "LIST", prefix, err)
	}
	page := ListPage{Objects: make([]ObjectInfo, 0, len(out.Contents))}
	for _, o := range out.Contents {
		page.Objects = append(page.Objects, ObjectInfo{
			Key:          b.rel(aws.ToString(o.Key)),
			Size:         aws.ToInt64(o.Size),
			ETag:         trimETag(aws.ToString(o.ETag)),
			LastModified: aws.ToTime(o.LastModified),
			StorageClass: string(o.StorageClass),
		})
	}
	for _, p := range out.CommonPrefixes {
		page.Prefixes = append(page.Prefixes, b.rel(aws.ToString(p.Prefix)))
	}
	if aws.ToBool(out.IsTruncated) {
		page.NextToken = aws.ToString(out.NextContinuationToken)
		if page.NextToken == "" {
			return page, fmt.Errorf("LIST %q: truncated listing without continuation token", prefix)
		}
	}
	return page, nil
}

func (b *S3) Get(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: &b.bucket, Key: aws.String(b.full(key))}
	switch {
	case length == 0:
		return io.NopCloser(strings.NewReader("")), nil
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1))
	case off > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	if ifMatch != "" {
		in.IfMatch = aws.String(`"` + ifMatch + `"`)
	}
	ctx, done := b.bound(ctx, 0)
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		done()
		return nil, b.wrap(ctx, "GET", key, err)
	}
	if ifMatch == "" {
		ifMatch = trimETag(aws.ToString(out.ETag))
	}
	// What the server said it sends: a range past the end is cut short.
	left := int64(-1)
	if out.ContentLength != nil {
		left = *out.ContentLength
	}
	return &resumingBody{b: b, ctx: ctx, done: done, key: key, off: off, left: left, etag: ifMatch, body: out.Body}, nil
}

func (b *S3) Upload(ctx context.Context, key string, r io.ReaderAt, size int64, opts PutOptions) (ObjectInfo, error) {
	ctx, done := b.bound(ctx, 0)
	defer done()
	if size <= b.cfg.PartSize {
		if err := b.emulate(ctx, key, opts.Cond, b.putIgnoresConditions.Load()); err != nil {
			return ObjectInfo{}, err
		}
		out, err := b.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        &b.bucket,
			Key:           aws.String(b.full(key)),
			Body:          io.NewSectionReader(r, 0, size),
			ContentLength: aws.Int64(size),
			ContentType:   nonEmpty(opts.ContentType),
			Metadata:      opts.Metadata,
			IfMatch:       quoteETag(opts.Cond.IfMatch),
			IfNoneMatch:   ifNoneMatch(opts.Cond),
		}, b.bodyOpts...)
		if err != nil {
			return ObjectInfo{}, b.wrap(ctx, "PUT", key, err)
		}
		return ObjectInfo{Key: key, Size: size, ETag: trimETag(aws.ToString(out.ETag)),
			ContentType: opts.ContentType, Metadata: opts.Metadata}, nil
	}
	partSize := PartSizeFor(size, b.cfg.PartSize)
	return b.multipart(ctx, key, opts, size, partSize, func(ctx context.Context, u *s3Multipart, num int32, off, n int64) (string, error) {
		return u.sendPart(ctx, num, r, off, n)
	})
}

func (b *S3) Copy(ctx context.Context, src, dst string, size int64, opts *PutOptions, cond Conditions) (ObjectInfo, error) {
	source := copySource(b.bucket, b.full(src))
	ctx, done := b.bound(ctx, silentWork(min(size, copyPartSize*int64(b.cfg.PartsInFlight))))
	defer done()
	if size > maxCopySize {
		return b.copyLarge(ctx, src, dst, source, size, opts, cond)
	}
	if err := b.emulate(ctx, dst, cond, b.copyIgnoresConditions.Load()); err != nil {
		return ObjectInfo{}, err
	}
	in := &s3.CopyObjectInput{Bucket: &b.bucket, Key: aws.String(b.full(dst)), CopySource: aws.String(source),
		IfMatch: quoteETag(cond.IfMatch), IfNoneMatch: ifNoneMatch(cond), CopySourceIfMatch: quoteETag(cond.SourceIfMatch)}
	if opts != nil {
		in.MetadataDirective = types.MetadataDirectiveReplace
		in.Metadata = opts.Metadata
		in.ContentType = nonEmpty(opts.ContentType)
	}
	out, err := b.client.CopyObject(ctx, in)
	if err != nil {
		return ObjectInfo{}, b.wrap(ctx, "COPY", src+" -> "+dst, err)
	}
	info := ObjectInfo{Key: dst, Size: size}
	if r := out.CopyObjectResult; r != nil {
		info.ETag = trimETag(aws.ToString(r.ETag))
		info.LastModified = aws.ToTime(r.LastModified)
	}
	if opts != nil {
		info.Metadata, info.ContentType = opts.Metadata, opts.ContentType
	}
	return info, nil
}

// copyLarge copies objects above CopyObject's 5 GiB limit part by part.
func (b *S3) copyLarge(ctx context.Context, src, dst, source string, size int64, opts *PutOptions, cond Conditions) (ObjectInfo, error) {
	if opts == nil {
		head, err := b.Head(ctx, src)
		if err != nil {
			return ObjectInfo{}, err
		}
		opts = &PutOptions{ContentType: head.ContentType, Metadata: head.Metadata}
	}
	opts.Cond = Conditions{IfMatch: cond.IfMatch, IfNoneMatch: cond.IfNoneMatch} // on the completion
	partSize := PartSizeFor(size, copyPartSize)
	return b.multipart(ctx, dst, *opts, size, partSize, func(ctx context.Context, u *s3Multipart, num int32, off, n int64) (string, error) {
		out, err := b.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: &b.bucket, Key: aws.String(b.full(dst)), UploadId: u.id, PartNumber: aws.Int32(num),
			CopySource: aws.String(source), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
			CopySourceIfMatch: quoteETag(cond.SourceIfMatch),
		})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.CopyPartResult.ETag), nil
	})
}

func (b *S3) Delete(ctx context.Context, keys ...string) error {
	_, err := b.Remove(ctx, anyVersion(keys))
	return err
}

func (b *S3) Remove(ctx context.Context, removals []Removal) ([]string, error) {
	ctx, done := b.bound(ctx, 0)
	defer done()
	if len(removals) == 1 {
		r := removals[0]
		_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: aws.String(b.full(r.Key)),
			IfMatch: quoteETag(r.ETag)})
		switch err := b.wrap(ctx, "DELETE", r.Key, err); {
		case err == nil || errors.Is(err, ErrNotFound):
			return nil, nil
		case errors.Is(err, ErrPrecondition):
			return []string{r.Key}, nil
		default:
			return nil, err
		}
	}
	var kept []string
	for batch := range slices.Chunk(removals, deleteBatch) {
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, r := range batch {
			ids[i] = types.ObjectIdentifier{Key: aws.String(b.full(r.Key)), ETag: quoteETag(r.ETag)}
		}
		out, err := b.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &b.bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return kept, b.wrap(ctx, "DELETE batch", batch[0].Key, err)
		}
		for _, e := range out.Errors {
			switch aws.ToString(e.Code) {
			case "NoSuchKey":
			case "PreconditionFailed":
				kept = append(kept, b.rel(aws.ToString(e.Key)))
			default:
				return kept, fmt.Errorf("DELETE %q: %s: %s", b.rel(aws.ToString(e.Key)), aws.ToString(e.Code), aws.ToString(e.Message))
			}
		}
	}
	return kept, nil
}

// MaxKeyLen leaves room for the client-folder prefix.
func (b *S3) MaxKeyLen() int { return MaxKey - len(b.prefix) }

func ifNoneMatch(c Conditions) *string {
	if c.IfNoneMatch {
		return aws.String("*")
	}
	return nil
}

// quoteETag is an ETag as conditional headers carry it, or nil for none.
func quoteETag(etag string) *string {
	if etag == "" {
		return nil
	}
	return aws.String(`"` + etag + `"`)
}

func (b *S3) Presign(ctx context.Context, key string, link Link) (string, error) {
	var (
		req *v4.PresignedHTTPRequest
		err error
	)
	if link.Upload {
		req, err = b.presign.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: &b.bucket, Key: aws.String(b.full(key))},
			s3.WithPresignExpires(link.TTL))
	} else {
		req, err = b.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: aws.String(b.full(key)),
			ResponseContentType: nonEmpty(link.ContentType), ResponseContentDisposition: nonEmpty(link.ContentDisposition)},
			s3.WithPresignExpires(link.TTL))
	}
	if err != nil {
		return "", b.wrap(ctx, "presign", key, err)
	}
	return req.URL, nil
}

// wrap turns an SDK error into one that wraps this package's sentinels and
// names the operation and key.
func (b *S3) wrap(ctx context.Context, op, key string, err error) error {
	if err == nil {
		return nil
	}
	if timedOut(ctx) {
		return fmt.Errorf("%s %q: %w", op, key, context.Cause(ctx))
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		var sentinel error
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			sentinel = ErrNotFound
		case "NoSuchBucket":
			sentinel = fmt.Errorf("%w: %q", ErrNoSuchBucket, b.bucket)
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken":
			sentinel = ErrBadCredentials
		case "AccessDenied", "Forbidden":
			sentinel = ErrAccessDenied
		case "PreconditionFailed", "ConditionalRequestConflict":
			// 409 ConditionalRequestConflict: another conditional write
			// of the key won the race.
			sentinel = ErrPrecondition
		case "NotImplemented", "MalformedXML", "InvalidArgument", "InvalidRequest":
			sentinel = ErrNotImplemented
		case "InvalidBucketName":
			sentinel = ErrBucketName
		}
		if sentinel != nil {
			return fmt.Errorf("%s %q: %w (%s)", op, key, sentinel, apiErr.ErrorCode())
		}
	}
	// The SDK's credential chain reports failure as plain text.
	if strings.Contains(err.Error(), "get credentials:") {
		return fmt.Errorf("%s %q: %w: %v", op, key, ErrNoCredentials, err)
	}
	if plainHTTP(err) {
		return fmt.Errorf("%s %q: %w", op, key, ErrPlainHTTP)
	}
	if errors.Is(err, ErrSpeaksTLS) {
		return fmt.Errorf("%s %q: %w", op, key, ErrSpeaksTLS)
	}
	var netErr *net.OpError
	if errors.As(err, &netErr) && netErr.Op == "dial" {
		return fmt.Errorf("%s %q: %w: %v", op, key, ErrUnreachable, netErr.Err)
	}
	return fmt.Errorf("%s %q: %w", op, key, err)
}

// plainHTTP reports Go's answer to an https:// request that got a plain
// HTTP response (net/http reports it as text only).
func plainHTTP(err error) bool {
	return err != nil && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

func trimETag(s string) string { return strings.Trim(s, `"`) }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func lowerKeys(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// copySource is the URL-encoded "bucket/key" CopyObject expects; each
// segment is escaped so names with spaces, '+', '%' or '?' survive.
func copySource(bucket, key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return bucket + "/" + strings.Join(segs, "/")
}
