// Package metrics serves a mount's Prometheus metrics on /metrics: S3
// requests by operation and outcome with their latency, bytes sent and
// received, FUSE operations, cache hits and misses, uploads waiting and
// retried, and Go's runtime and process metrics. Requests and FUSE
// operations are counted as they happen; the rest is read from the
// mount's own counters when Prometheus scrapes.
package metrics

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Source is where the values read at scrape time come from.
type Source struct {
	// Pending returns the files whose changes are not in S3 yet, and
	// their size.
	Pending func() (files int, bytes int64)
	// UploadFailures returns the uploads that failed and were retried.
	UploadFailures func() int64
	// Caches returns each cache's hits and misses, by cache name.
	Caches func() map[string][2]int64
	// Conflicts returns the writes that found their file changed elsewhere.
	Conflicts func() int64
}

// Metrics is one mount's registry. It is the S3 backend's Observer.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	sent     prometheus.Counter
	received prometheus.Counter
	fuseOps  *prometheus.CounterVec
}

// New makes the registry, with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "s3drive_s3_requests_total",
			Help: "S3 requests sent (each SDK retry counts), by operation and outcome: ok, not_found, precondition_failed, denied, throttled, client_error, server_error, no_response."},
			[]string{"operation", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "s3drive_s3_request_duration_seconds",
			Help:    "Time from sending an S3 request to its response's headers, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}, // 1 ms to about 60 s
			[]string{"operation"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "s3drive_s3_sent_bytes_total",
			Help: "Request body bytes sent to S3 (uploads)."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "s3drive_s3_received_bytes_total",
			Help: "Response body bytes read from S3 (downloads and listings)."}),
		fuseOps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "s3drive_fuse_operations_total",
			Help: "Requests from the kernel, by FUSE operation."}, []string{"operation"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.sent, m.received, m.fuseOps,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Request implements s3backend.Observer.
func (m *Metrics) Request(op, outcome string, took time.Duration) {
	m.requests.WithLabelValues(op, outcome).Inc()
	m.latency.WithLabelValues(op).Observe(took.Seconds())
}

// Transferred implements s3backend.Observer.
func (m *Metrics) Transferred(up, down int64) {
	if up > 0 {
		m.sent.Add(float64(up))
	}
	if down > 0 {
		m.received.Add(float64(down))
	}
}

var (
	pendingDesc = prometheus.NewDesc("s3drive_pending_uploads",
		"Files whose changes are not in S3 yet (being written, waiting, or being retried).", nil, nil)
	pendingBytesDesc = prometheus.NewDesc("s3drive_pending_upload_bytes",
		"Size of the files whose changes are not in S3 yet.", nil, nil)
	failuresDesc = prometheus.NewDesc("s3drive_upload_retries_total",
		"Uploads that failed (the file's data stays staged) and were scheduled to be retried.", nil, nil)
	conflictsDesc = prometheus.NewDesc("s3drive_conflicts_total",
		"Writes that found their file changed elsewhere since this mount read it (both versions kept, or an attribute change dropped).", nil, nil)
	hitsDesc = prometheus.NewDesc("s3drive_cache_hits_total",
		"Questions a cache answered without S3: metadata still fresh or matching a listing, files whole in the data cache.", []string{"cache"}, nil)
	missesDesc = prometheus.NewDesc("s3drive_cache_misses_total",
		"Questions a cache could not answer, left to S3.", []string{"cache"}, nil)
)

type scraped struct{ src Source }

func (c scraped) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pendingDesc, pendingBytesDesc, failuresDesc, conflictsDesc, hitsDesc, missesDesc} {
		ch <- d
	}
}

func (c scraped) Collect(ch chan<- prometheus.Metric) {
	files, bytes := c.src.Pending()
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(files))
	ch <- prometheus.MustNewConstMetric(pendingBytesDesc, prometheus.GaugeValue, float64(bytes))
	ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, float64(c.src.UploadFailures()))
	ch <- prometheus.MustNewConstMetric(conflictsDesc, prometheus.CounterValue, float64(c.src.Conflicts()))
	for name, hm := range c.src.Caches() {
		ch <- prometheus.MustNewConstMetric(hitsDesc, prometheus.CounterValue, float64(hm[0]), name)
		ch <- prometheus.MustNewConstMetric(missesDesc, prometheus.CounterValue, float64(hm[1]), name)
	}
}

// Serve listens on addr (HOST:PORT) and serves /metrics until the process
// ends. A failure to listen is returned at once, so a wrong or busy
// address stops the mount with a clear message instead of going unseen.
func (m *Metrics) Serve(addr string, src Source, log *slog.Logger) error {
	if err := m.reg.Register(scraped{src}); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	go func() {
		if err := http.Serve(ln, mux); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return nil
}
