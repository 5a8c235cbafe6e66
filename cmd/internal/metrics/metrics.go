// Package metrics serves a mount's Prometheus metrics on /metrics: S3
// requests by operation, files waiting to be uploaded, and Go's runtime and
// process metrics. Values are read from the mount's own counters when
// Prometheus scrapes, so serving them costs nothing between scrapes.
package metrics

import (
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Source is where the values come from.
type Source struct {
	// Requests returns the S3 requests sent so far, by operation.
	Requests func() map[string]int64
	// Pending returns the files whose changes are not in S3 yet.
	Pending func() int
}

var (
	requestsDesc = prometheus.NewDesc("s3drive_s3_requests_total",
		"S3 requests sent, by operation (retries included).", []string{"operation"}, nil)
	pendingDesc = prometheus.NewDesc("s3drive_pending_uploads",
		"Files whose changes are not in S3 yet (closed and waiting, or being retried).", nil, nil)
)

type collector struct{ src Source }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- pendingDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for op, n := range c.src.Requests() {
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(n), op)
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(c.src.Pending()))
}

// Serve listens on addr (HOST:PORT) and serves /metrics until the process
// ends. A failure to listen is returned at once, so a wrong or busy
// address stops the mount with a clear message instead of going unseen.
func Serve(addr string, src Source, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	go func() {
		if err := http.Serve(ln, mux); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return nil
}
