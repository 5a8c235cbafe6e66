package integration

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// faultProxy stands between a mount and the S3 server. While on, it
// answers a share of requests with 503 SlowDown (as S3 does when
// throttling) and resets a share of connections: some before the request
// reaches the server, some after the server acted on it (the answer is
// lost, as on a network cut), which is what makes retries hard.
type faultProxy struct {
	URL string
	on  atomic.Bool

	mu  sync.Mutex // protects rng and the counts
	rng *rand.Rand
	// Faults injected, by kind.
	slowDowns, resetsBefore, resetsAfter int
}

func startFaultProxy(t *testing.T, upstream string, seed uint64) *faultProxy {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{rng: rand.New(rand.NewPCG(seed, 0x5eed))}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p.fault() {
		case "slowdown":
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>` +
				`<Message>Please reduce your request rate.</Message></Error>`))
		case "reset-before":
			reset(w)
		case "reset-after":
			rp.ServeHTTP(discard{header: http.Header{}}, r)
			reset(w)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// fault picks what happens to one request.
func (p *faultProxy) fault() string {
	if !p.on.Load() {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch x := p.rng.Float64(); {
	case x < 0.08:
		p.slowDowns++
		return "slowdown"
	case x < 0.10:
		p.resetsBefore++
		return "reset-before"
	case x < 0.12:
		p.resetsAfter++
		return "reset-after"
	}
	return ""
}

func (p *faultProxy) counts() (slowDowns, resetsBefore, resetsAfter int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.slowDowns, p.resetsBefore, p.resetsAfter
}

// reset closes the client's connection with an RST and no answer.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	conn.Close()
}

// discard is a ResponseWriter that drops the answer.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
