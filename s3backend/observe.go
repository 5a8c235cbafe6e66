package s3backend

import (
	"io"
	"net/http"
	"time"
)

// Observer learns of every request sent to S3 as it ends (metrics). Its
// methods are called concurrently and must not block.
type Observer interface {
	// Request reports one request: its operation, outcome (see Outcome)
	// and how long it took until the response's headers came.
	Request(op, outcome string, took time.Duration)
	// Transferred reports body bytes sent (up) or received (down).
	Transferred(up, down int64)
}

// Outcomes of a request, as Observer.Request and the error tally name them.
const (
	OutcomeOK           = "ok"
	OutcomeNotFound     = "not_found"           // 404: an answer, not a failure
	OutcomePrecondition = "precondition_failed" // 304, 412: a condition said no
	OutcomeDenied       = "denied"              // 403
	OutcomeThrottled    = "throttled"           // 429, 503
	OutcomeClientError  = "client_error"        // another 4xx
	OutcomeServerError  = "server_error"        // another 5xx
	OutcomeNoResponse   = "no_response"         // the connection failed or timed out
)

// Outcome names how a request ended.
func Outcome(resp *http.Response) string {
	if resp == nil {
		return OutcomeNoResponse
	}
	switch c := resp.StatusCode; {
	case c < 400 && c != http.StatusNotModified:
		return OutcomeOK
	case c == http.StatusNotFound:
		return OutcomeNotFound
	case c == http.StatusNotModified || c == http.StatusPreconditionFailed:
		return OutcomePrecondition
	case c == http.StatusForbidden:
		return OutcomeDenied
	case c == http.StatusTooManyRequests || c == http.StatusServiceUnavailable:
		return OutcomeThrottled
	case c < 500:
		return OutcomeClientError
	}
	return OutcomeServerError
}

// failed reports whether an outcome counts as an error: not an answer the
// drive asked for (a 404 of a name looked up, a condition refused).
func failed(outcome string) bool {
	switch outcome {
	case OutcomeOK, OutcomeNotFound, OutcomePrecondition:
		return false
	}
	return true
}

// countingBody reports the bytes of a response body as they are read.
type countingBody struct {
	io.ReadCloser
	obs Observer
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if n > 0 {
		c.obs.Transferred(0, int64(n))
	}
	return n, err
}
