package s3backend

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

// countingTransport counts every HTTP request sent to S3, retries included,
// by the S3 operation it carries. Counting at the wire rather than per API
// call is what makes the counts exact enough for tests to assert.
//
// It is also where every request's fate is seen, so it keeps the rest of
// the wire-level bookkeeping: the requests in flight under the server's
// throttling (congestion), whether the server answers at all (health), and
// each operation's progress for its watchdog.
type countingTransport struct {
	next   http.RoundTripper
	count  *counters
	obs    Observer // nil: none
	log    *slog.Logger
	cong   *congestion
	health *health
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := classify(req)
	t.count.add(op)
	ctx := req.Context()
	if err := t.cong.acquire(ctx); err != nil {
		return nil, err
	}
	w := touchFrom(ctx)
	if w != nil && req.Body != nil && req.Body != http.NoBody {
		sent := *req
		sent.Body = progressReader{req.Body, w}
		req = &sent
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	throttled := resp != nil && (resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests)
	t.cong.release(throttled)
	outcome := Outcome(resp)
	if failed(outcome) {
		t.count.failed(op)
	}
	if t.obs != nil {
		t.obs.Request(op, outcome, time.Since(start))
		if resp != nil {
			if req.ContentLength > 0 {
				t.obs.Transferred(req.ContentLength, 0)
			}
			resp.Body = countingBody{resp.Body, t.obs}
		}
	}
	switch {
	case resp != nil:
		t.health.answered()
		if w != nil {
			w.touch()
			resp.Body = progressReader{resp.Body, w}
		}
	case t.health.checking.Load() && req.URL.Scheme == "http" && errors.Is(err, syscall.ECONNRESET) && speaksTLS(req.URL.Host):
		// The mount-time check, in plain HTTP, of a server that speaks
		// TLS: say so rather than retry.
		err = fmt.Errorf("%w: %v", ErrSpeaksTLS, err)
	case noResponse(ctx, err):
		t.health.failed(err)
	}
	if t.log.Enabled(req.Context(), slog.LevelDebug) {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.log.Debug("s3", "op", op, "method", req.Method, "path", req.URL.Path, "query", req.URL.RawQuery,
			"status", status, "took", time.Since(start), "err", err)
	}
	return resp, err
}

// classify names the S3 operation of a request from its method, query and
// headers.
func classify(req *http.Request) string {
	q := req.URL.Query()
	copySource := req.Header.Get("X-Amz-Copy-Source") != ""
	switch req.Method {
	case http.MethodHead:
		return OpHead
	case http.MethodGet:
		if q.Has("list-type") {
			return OpList
		}
		if q.Has("uploadId") || q.Has("uploads") || q.Has("location") || q.Has("versioning") {
			return OpOther
		}
		return OpGet
	case http.MethodPut:
		switch {
		case q.Has("partNumber") && copySource:
			return OpUploadPartCopy
		case q.Has("partNumber"):
			return OpUploadPart
		case copySource:
			return OpCopy
		case req.URL.Path == "/" || q.Has("tagging") || q.Has("acl"):
			return OpOther
		}
		return OpPut
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return OpCreateMultipart
		case q.Has("uploadId"):
			return OpCompleteMultipart
		case q.Has("delete"):
			return OpDeleteBatch
		}
	case http.MethodDelete:
		if q.Has("uploadId") {
			return OpAbortMultipart
		}
		return OpDelete
	}
	return OpOther
}

// newHTTPClient returns a client tuned for many parallel requests to one
// endpoint: enough idle connections to keep every in-flight request warm,
// and timeouts so a dead server becomes an error instead of a hang.
// AWS_CA_BUNDLE is honoured as the SDK's own client would.
func newHTTPClient(maxConns int, t *countingTransport) (*http.Client, error) {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	base := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		MaxIdleConns:        maxConns * 2,
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		// No ResponseHeaderTimeout: how long a server may think before it
		// answers depends on the request (assembling a 5 GiB upload), and
		// each operation's watchdog knows that (see bound).
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	if path := os.Getenv("AWS_CA_BUNDLE"); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading AWS_CA_BUNDLE: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("AWS_CA_BUNDLE %s holds no PEM certificate", path)
		}
		base.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	t.next = base
	return &http.Client{Transport: t}, nil
}
