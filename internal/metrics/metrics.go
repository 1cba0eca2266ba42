// Package metrics is keyprovider's OpenTelemetry instrumentation: the one
// place that names the instruments, their units and their attributes, and
// creates them on a [metric.MeterProvider] (the global one when none is
// given). Package rotate records fetches and observes its Sources; the
// root package's Transport counts requests.
//
// Attributes are low-cardinality and never secret: a service's name, a
// backend's name, a result or a state from a fixed list. Never a key, a
// fingerprint, a path, an ARN or a reference.
//
// A MeterProvider that fails to create an instrument is logged once (per
// process) and the metrics of that Source or Transport are skipped: a
// broken exporter must not break the service.
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/keyprovider/keyprovider/internal/kinds"
)

// ScopeName is the instrumentation scope of every instrument.
const ScopeName = "github.com/keyprovider/keyprovider"

// The instruments, named by OpenTelemetry's guidelines (UCUM units).
const (
	Fetches         = "keyprovider.fetches"
	FetchDuration   = "keyprovider.fetch.duration"
	LastSuccess     = "keyprovider.source.last_success"
	KeyAge          = "keyprovider.source.key.age"
	State           = "keyprovider.source.state"
	Rotations       = "keyprovider.source.rotations"
	StaleServes     = "keyprovider.source.stale_serves"
	Invalidations   = "keyprovider.source.invalidations"
	ForcedRefreshes = "keyprovider.source.forced_refreshes"
	Requests        = "keyprovider.http.requests"
	Replays         = "keyprovider.http.replays"
	Throttled       = "keyprovider.http.throttled"
	Withheld        = "keyprovider.http.withheld"
)

// The attributes.
const (
	AttrService = attribute.Key("keyprovider.service")
	AttrBackend = attribute.Key("keyprovider.backend")
	AttrResult  = attribute.Key("keyprovider.result")
	AttrState   = attribute.Key("keyprovider.state")
	AttrTrigger = attribute.Key("keyprovider.trigger")
)

// Documented lists every instrument, for the test that an exporter's
// output holds each one.
var Documented = []string{
	Fetches, FetchDuration, LastSuccess, KeyAge, State, Rotations, StaleServes,
	Invalidations, ForcedRefreshes, Requests, Replays, Throttled, Withheld,
}

// Result values of a fetch.
const (
	ResultOK = iota
	ResultNotFound
	ResultInvalidKey
	ResultPermission
	ResultUnavailable
	ResultCanceled
	numResults
)

var resultNames = [numResults]string{"ok", "not_found", "invalid_key", "permission", "unavailable", "canceled"}

// ResultOf classifies a fetch's error onto the fixed list of results.
func ResultOf(err error) int {
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, context.Canceled):
		return ResultCanceled
	case errors.Is(err, kinds.ErrNotFound):
		return ResultNotFound
	case errors.Is(err, kinds.ErrInvalidKey):
		return ResultInvalidKey
	case errors.Is(err, kinds.ErrPermission):
		return ResultPermission
	default:
		return ResultUnavailable
	}
}

// durationBounds suit a backend read: from a file's microseconds to a
// cloud API's seconds.
var durationBounds = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

var warned atomic.Bool

// failed logs the first failure to create an instrument in the process.
func failed(logger *slog.Logger, err error) {
	if logger == nil {
		logger = slog.Default()
	}
	if warned.CompareAndSwap(false, true) {
		logger.Warn("keyprovider: the MeterProvider cannot create an instrument; metrics are skipped",
			"error", err)
	}
}

// meter returns mp's meter for keyprovider, or the global MeterProvider's
// when mp is nil.
func meter(mp metric.MeterProvider) metric.Meter {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return mp.Meter(ScopeName)
}

// errs collects the errors of creating instruments.
type errs struct{ err error }

func (e *errs) add(err error) {
	if err != nil && e.err == nil {
		e.err = err
	}
}
