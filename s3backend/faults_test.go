package s3backend

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// faultyServer is gofakes3 behind a handler that misbehaves as told.
func faultyServer(t *testing.T, misbehave func(w http.ResponseWriter, r *http.Request, next http.Handler) bool, cfg Config) *S3 {
	t.Helper()
	fake := s3mem.New()
	if err := fake.CreateBucket("bucket"); err != nil {
		t.Fatal(err)
	}
	next := gofakes3.New(fake).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !misbehave(w, r, next) {
			next.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	cfg.Bucket, cfg.Prefix, cfg.Endpoint = "bucket", "p", srv.URL
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cutAfter passes n bytes of a body, then resets the connection.
type cutAfter struct {
	http.ResponseWriter
	n   int
	cut bool
}

func (c *cutAfter) WriteHeader(code int) {
	if !c.cut {
		c.ResponseWriter.WriteHeader(code)
	}
}

func (c *cutAfter) Write(p []byte) (int, error) {
	if c.cut {
		return 0, errors.New("cut")
	}
	if len(p) <= c.n {
		c.n -= len(p)
		return c.ResponseWriter.Write(p)
	}
	c.ResponseWriter.Write(p[:c.n])
	http.NewResponseController(c.ResponseWriter).Flush()
	c.cut = true
	if conn, _, err := http.NewResponseController(c.ResponseWriter).Hijack(); err == nil {
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}
	return 0, errors.New("cut")
}

func TestGetResumesCutBody(t *testing.T) {
	var cuts atomic.Int32
	b := faultyServer(t, func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "blob") && cuts.Add(1) <= 3 {
			defer func() { recover() }()
			next.ServeHTTP(&cutAfter{ResponseWriter: w, n: 100_000}, r)
			return true
		}
		return false
	}, Config{})
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	if _, err := b.Upload(context.Background(), "blob", bytes.NewReader(data), int64(len(data)), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, err := b.Get(context.Background(), "blob", 0, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes, err %v", len(got), len(data), err)
	}
	if n := b.Counters()[OpGet]; n != 4 {
		t.Errorf("%d GETs, want 4: one cut three times, resumed each time from where it broke", n)
	}
}

func TestSilentServerTimesOut(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var silent atomic.Bool
	b := faultyServer(t, func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if silent.Load() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return true
		}
		return false
	}, Config{Timeout: 300 * time.Millisecond})
	silent.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := b.Head(context.Background(), "x")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("HEAD of a silent server: %v, want ErrTimeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("HEAD of a silent server hung")
	}
	if !b.Offline() {
		t.Error("a silent server is not reported offline")
	}
	silent.Store(false)
	if _, err := b.List(context.Background(), "", "/", "", 1); err != nil {
		t.Fatal(err)
	}
	if b.Offline() {
		t.Error("still offline after an answer")
	}
}

func TestSlowBodyIsNotATimeout(t *testing.T) {
	b := faultyServer(t, func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "slow") {
			return false
		}
		w.Header().Set("Content-Length", "10")
		w.WriteHeader(http.StatusOK)
		for range 10 { // 1 s in all, 100 ms between bytes
			time.Sleep(100 * time.Millisecond)
			w.Write([]byte("x"))
			http.NewResponseController(w).Flush()
		}
		return true
	}, Config{Timeout: 400 * time.Millisecond})
	rc, err := b.Get(context.Background(), "slow", 0, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != "xxxxxxxxxx" {
		t.Fatalf("slow body: %q, %v: the watchdog must slide with progress", got, err)
	}
}

func TestThrottlingNarrowsWindow(t *testing.T) {
	var refused atomic.Int32
	b := faultyServer(t, func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if refused.Add(1) > 3 {
			return false
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>`))
		return true
	}, Config{MaxConns: 64})
	if _, err := b.List(context.Background(), "", "/", "", 1); err != nil {
		t.Fatalf("a request throttled three times then served: %v", err)
	}
	if got := b.InFlightLimit(); got >= 64 {
		t.Errorf("requests in flight still limited to %d after SlowDown", got)
	}
}
