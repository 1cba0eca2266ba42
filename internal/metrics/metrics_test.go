package metrics

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/keyprovider/keyprovider/internal/kinds"
)

// brokenProvider's meters fail to create histograms and observable gauges.
type brokenProvider struct{ noop.MeterProvider }

func (brokenProvider) Meter(string, ...metric.MeterOption) metric.Meter { return brokenMeter{} }

type brokenMeter struct{ noop.Meter }

var errBroken = errors.New("instrument refused")

func (brokenMeter) Float64Histogram(string, ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	return nil, errBroken
}

func (brokenMeter) Int64Counter(string, ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return nil, errBroken
}

func TestFailingMeterProviderIsLoggedOnceAndSkipped(t *testing.T) {
	warned.Store(false)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	stats := func() SourceStats { return SourceStats{} }
	for range 3 {
		s := NewSource(brokenProvider{}, logger, "tessera", "vault", stats)
		if s != nil {
			t.Fatal("NewSource over a failing MeterProvider: want nil (metrics skipped)")
		}
		s.Fetch(context.Background(), nil, time.Second) // a nil Source records nothing, and does not panic
		s.Close()
		tr := NewTransport(brokenProvider{}, logger, "tessera")
		if tr != nil {
			t.Fatal("NewTransport over a failing MeterProvider: want nil")
		}
		tr.Request(context.Background(), ClassError)
		tr.Replay(context.Background())
		tr.Withhold(context.Background())
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("logged %d warnings, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "instrument refused") {
		t.Errorf("the warning does not carry the error: %s", logs.String())
	}
}

func TestNoopMeterProviderWorks(t *testing.T) {
	s := NewSource(noop.NewMeterProvider(), nil, "tessera", "env", func() SourceStats { return SourceStats{} })
	if s == nil {
		t.Fatal("NewSource over a no-op MeterProvider returned nil")
	}
	s.Fetch(context.Background(), errors.New("x"), time.Millisecond)
	s.Close()
}

func TestResultOf(t *testing.T) {
	for err, want := range map[error]int{
		nil:                    ResultOK,
		context.Canceled:       ResultCanceled,
		kinds.ErrNotFound:      ResultNotFound,
		kinds.ErrInvalidKey:    ResultInvalidKey,
		kinds.ErrPermission:    ResultPermission,
		kinds.ErrUnavailable:   ResultUnavailable,
		errors.New("whatever"): ResultUnavailable,
	} {
		if got := ResultOf(err); got != want {
			t.Errorf("ResultOf(%v) = %s, want %s", err, resultNames[got], resultNames[want])
		}
	}
}
