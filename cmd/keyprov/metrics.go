package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// metricsPath is where keyprov proxy and keyprov exec serve their metrics.
const metricsPath = "/metrics"

// promMetrics is an OpenTelemetry SDK MeterProvider whose metrics are read
// by OpenTelemetry's Prometheus exporter, and the handler serving them in
// Prometheus text. The Sources are given the MeterProvider
// (rotate.WithMeterProvider), so their Transports count on it too.
type promMetrics struct {
	mp      *sdkmetric.MeterProvider
	handler http.Handler
}

// newPromMetrics builds a MeterProvider on its own Prometheus registry
// (never the global one): the page holds keyprovider's metrics alone, whose
// attributes are service and backend names and fixed values, never a key,
// a fingerprint, a path or a reference.
func newPromMetrics() (*promMetrics, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &promMetrics{
		mp:      sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)),
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}, nil
}

// withMetrics serves /metrics from m (without the local token, as /healthz:
// nothing in it is secret) and everything else from next.
func withMetrics(m *promMetrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == metricsPath {
			m.handler.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// metricsServer serves /metrics on a listener of its own (--metrics-listen).
type metricsServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// parseMetricsListen reads --metrics-listen: a host:port on a loopback
// address, or any host with allowRemote.
func parseMetricsListen(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--metrics-listen %q: want host:port", addr)
	}
	if !isLoopbackHost(host) && !allowRemote {
		return fmt.Errorf("--metrics-listen %q is not a loopback address; give --allow-non-loopback to listen there anyway", addr)
	}
	return nil
}

// serveMetrics listens on addr and serves m's /metrics there (404 for any
// other path) until stop.
func serveMetrics(addr string, m *promMetrics, log *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+metricsPath, m.handler)
	s := &metricsServer{ln: ln, done: make(chan struct{}), srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("keyprov: serving metrics failed", "error", err)
		}
	}()
	log.Info("keyprov metrics listening", "listen", ln.Addr().String(), "path", metricsPath)
	return s, nil
}

// stop closes the metrics listener and waits for its server to end; nil is
// a no-op.
func (s *metricsServer) stop() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
}

// shutdown stops the MeterProvider; nil is a no-op.
func (m *promMetrics) shutdown() {
	if m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.mp.Shutdown(ctx)
}
