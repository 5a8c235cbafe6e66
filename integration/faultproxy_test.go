package integration

import (
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultProxy stands between a mount and the S3 server and misbehaves as
// told, the way networks and servers do:
//
//   - pass: forwards everything (the default);
//   - refuse: the port is closed (connection refused), as a server down;
//   - hang: accepts connections and requests and never answers;
//   - a fraction of requests answered 503 SlowDown (S3 throttling), of
//     connections reset before or after the server acted on the request
//     (the answer lost, as on a network cut), and of GET bodies cut by a
//     reset part way through;
//   - latency added before each request is forwarded.
//
// The stress test's mix (on) is 8% SlowDown and 2% + 2% resets.
type faultProxy struct {
	URL  string
	addr string
	rp   *httputil.ReverseProxy
	// on turns the stress test's mix of faults on.
	on atomic.Bool

	mu  sync.Mutex // protects the following
	srv *http.Server
	// mode is "pass", "refuse" or "hang"; hung is closed when a hang ends.
	mode                             string
	hung                             chan struct{}
	slowFrac, resetFrac, bodyCutFrac float64
	latency                          time.Duration
	rng                              *rand.Rand
	// Faults injected, by kind.
	slowDowns, resetsBefore, resetsAfter, bodyCuts int
	// trace, when not nil, gets a line per request: what was asked, the
	// fault and the server's status, so a failed stress run names the
	// requests behind it.
	trace []string
}

func startFaultProxy(t *testing.T, upstream string, seed uint64) *faultProxy {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{addr: ln.Addr().String(), rp: httputil.NewSingleHostReverseProxy(target),
		mode: "pass", rng: rand.New(rand.NewPCG(seed, 0x5eed))}
	p.rp.ErrorLog = log.New(io.Discard, "", 0)
	p.URL = "http://" + p.addr
	p.serve(ln)
	t.Cleanup(func() {
		p.setMode("pass") // ends hung requests
		p.mu.Lock()
		srv := p.srv
		p.mu.Unlock()
		if srv != nil {
			srv.Close()
		}
	})
	return p
}

func (p *faultProxy) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(p.handle)}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go srv.Serve(ln)
}

// setMode switches between "pass", "refuse" and "hang".
func (p *faultProxy) setMode(mode string) {
	p.mu.Lock()
	old, srv := p.mode, p.srv
	p.mode = mode
	if old == "hang" && p.hung != nil {
		close(p.hung)
		p.hung = nil
	}
	if mode == "hang" {
		p.hung = make(chan struct{})
	}
	if mode == "refuse" {
		p.srv = nil
	}
	p.mu.Unlock()
	switch {
	case mode == "refuse" && srv != nil:
		srv.Close() // the port closes, and open connections with it
	case old == "refuse" && mode != "refuse":
		for {
			ln, err := net.Listen("tcp", p.addr)
			if err == nil {
				p.serve(ln)
				return
			}
			time.Sleep(10 * time.Millisecond) // the old socket is going
		}
	}
}

// setFaults sets the fractions of requests throttled, reset, and of GET
// bodies cut, and the latency added to each request.
func (p *faultProxy) setFaults(slowDown, reset, bodyCut float64, latency time.Duration) {
	p.mu.Lock()
	p.slowFrac, p.resetFrac, p.bodyCutFrac, p.latency = slowDown, reset, bodyCut, latency
	p.mu.Unlock()
}

func (p *faultProxy) handle(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	mode, hung, latency := p.mode, p.hung, p.latency
	p.mu.Unlock()
	if mode == "hang" {
		select { // silent until the hang ends or the client gives up
		case <-hung:
		case <-r.Context().Done():
		}
		reset(w)
		return
	}
	if latency > 0 {
		time.Sleep(latency)
	}
	fault := p.fault(r)
	if p.tracing() {
		rec := &statusRecorder{ResponseWriter: w}
		w = rec
		start := time.Now()
		defer func() { p.record(start, r, fault, rec.status) }()
	}
	switch fault {
	case "slowdown":
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>` +
			`<Message>Please reduce your request rate.</Message></Error>`))
	case "reset-before":
		reset(w)
	case "reset-after":
		p.rp.ServeHTTP(discard{header: http.Header{}}, r)
		reset(w)
	case "body-cut":
		p.rp.ServeHTTP(&cutWriter{ResponseWriter: w, left: p.cutAt()}, r)
	default:
		p.rp.ServeHTTP(w, r)
	}
}

// startTrace makes the proxy record every request from now on.
func (p *faultProxy) startTrace() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.trace == nil {
		p.trace = []string{}
	}
}

func (p *faultProxy) tracing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.trace != nil
}

func (p *faultProxy) record(start time.Time, r *http.Request, fault string, status int) {
	line := fmt.Sprintf("%s..%s proxy %s %s", start.Format("15:04:05.000"), time.Now().Format("05.000"),
		r.Method, r.URL.RequestURI())
	for _, h := range []string{"X-Amz-Copy-Source", "If-Match", "If-None-Match", "X-Amz-Copy-Source-If-Match",
		"X-Amz-Metadata-Directive", "X-Amz-Meta-Mode"} {
		if v := r.Header.Get(h); v != "" {
			line += " " + h + "=" + v
		}
	}
	if fault != "" {
		line += " FAULT " + fault
	}
	line += fmt.Sprintf(" -> %d", status)
	p.mu.Lock()
	p.trace = append(p.trace, line)
	p.mu.Unlock()
}

// traceLines is what the trace holds.
func (p *faultProxy) traceLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.trace)
}

// statusRecorder notes the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// fault picks what happens to one request.
func (p *faultProxy) fault(r *http.Request) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	x := p.rng.Float64()
	if p.on.Load() {
		switch {
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
	switch {
	case x < p.slowFrac:
		p.slowDowns++
		return "slowdown"
	case x < p.slowFrac+p.resetFrac/2:
		p.resetsBefore++
		return "reset-before"
	case x < p.slowFrac+p.resetFrac:
		p.resetsAfter++
		return "reset-after"
	case r.Method == http.MethodGet && r.Header.Get("Range") != "" && x < p.slowFrac+p.resetFrac+p.bodyCutFrac:
		p.bodyCuts++
		return "body-cut"
	}
	return ""
}

// cutAt picks how many body bytes pass before a cut: up to 4 MiB.
func (p *faultProxy) cutAt() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.IntN(4 << 20)
}

func (p *faultProxy) counts() (slowDowns, resetsBefore, resetsAfter int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.slowDowns, p.resetsBefore, p.resetsAfter
}

func (p *faultProxy) cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bodyCuts
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

// cutWriter passes left bytes of a response body, then resets the
// connection: a body broken part way, after the headers said all is well.
type cutWriter struct {
	http.ResponseWriter
	left int
	cut  bool
}

var errCut = errors.New("body cut by the fault proxy")

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.cut {
		return 0, errCut
	}
	if len(b) <= c.left {
		c.left -= len(b)
		return c.ResponseWriter.Write(b)
	}
	n, _ := c.ResponseWriter.Write(b[:c.left])
	http.NewResponseController(c.ResponseWriter).Flush()
	c.cut = true
	conn, _, err := http.NewResponseController(c.ResponseWriter).Hijack()
	if err == nil {
		if tcp, ok := conn.(*net.TCPConn); ok {
			tcp.SetLinger(0)
		}
		conn.Close()
	}
	return n, errCut
}

// discard is a ResponseWriter that drops the answer.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

var _ io.Writer = (*cutWriter)(nil)
