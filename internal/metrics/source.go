package metrics

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The states a Source's state gauge reports (a Source that is closed is
// no longer observed).
var states = [...]string{"starting", "fresh", "stale", "failed"}

// The triggers of a forced refresh.
const (
	TriggerInvalidate = iota // a 401 reported through Invalidate
	TriggerWatch             // a Watcher's change notice
	TriggerRefresh           // a call of Source.Refresh
	numTriggers
)

var triggerNames = [numTriggers]string{"invalidate", "watch", "refresh"}

// SourceStats is what a Source's observable instruments read at each
// collection.
type SourceStats struct {
	// State is the Source's state by name ("starting", "fresh", ...).
	State string
	// Now is the Source's clock; LastSuccess the last successful fetch;
	// KeySeen when the key served was first fetched (zero: none yet).
	Now, LastSuccess, KeySeen time.Time
	// Rotations, StaleServes and Invalidations count changes of the key,
	// keys served while refreshes fail, and 401s reported for the current
	// key.
	Rotations, StaleServes, Invalidations uint64
	// Forced counts forced refreshes by trigger (TriggerInvalidate...).
	Forced [numTriggers]uint64
}

// Source is the instruments of one rotate.Source. A nil *Source records
// nothing: metrics are off, or the MeterProvider failed.
type Source struct {
	fetches  metric.Int64Counter
	duration metric.Float64Histogram
	// Built once per result, so that recording allocates no option slice.
	addBy    [numResults][]metric.AddOption
	recordBy [numResults][]metric.RecordOption
	reg      metric.Registration
}

// NewSource creates the instruments of a Source of service's keys read
// from backend on mp (nil: the global MeterProvider), observing stats at
// each collection. It returns nil, after logging once, if mp fails.
func NewSource(mp metric.MeterProvider, logger *slog.Logger, service, backend string, stats func() SourceStats) *Source {
	m := meter(mp)
	var e errs
	s := &Source{}
	var err error
	s.fetches, err = m.Int64Counter(Fetches, metric.WithUnit("{fetch}"),
		metric.WithDescription("Backend fetches of a key, by result."))
	e.add(err)
	s.duration, err = m.Float64Histogram(FetchDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of backend fetches of a key, by result."),
		metric.WithExplicitBucketBoundaries(durationBounds...))
	e.add(err)
	base := []attribute.KeyValue{AttrService.String(service), AttrBackend.String(backend)}
	for r, name := range resultNames {
		opt := metric.WithAttributeSet(attribute.NewSet(append(base[:2:2], AttrResult.String(name))...))
		s.addBy[r], s.recordBy[r] = []metric.AddOption{opt}, []metric.RecordOption{opt}
	}
	o := newObservers(m, &e)
	if e.err == nil {
		s.reg, err = m.RegisterCallback(o.callback(base, stats), o.list()...)
		e.add(err)
	}
	if e.err != nil {
		failed(logger, e.err)
		return nil
	}
	return s
}

// Fetch records one backend fetch that took d and returned err.
func (s *Source) Fetch(ctx context.Context, err error, d time.Duration) {
	if s == nil {
		return
	}
	r := ResultOf(err)
	s.fetches.Add(ctx, 1, s.addBy[r]...)
	s.duration.Record(ctx, d.Seconds(), s.recordBy[r]...)
}

// Close stops the observation of the Source.
func (s *Source) Close() {
	if s != nil && s.reg != nil {
		_ = s.reg.Unregister()
	}
}

// observers are a Source's observable instruments.
type observers struct {
	lastSuccess, keyAge                   metric.Float64ObservableGauge
	state                                 metric.Int64ObservableGauge
	rotations, staleServes, invalidations metric.Int64ObservableCounter
	forced                                metric.Int64ObservableCounter
}

func newObservers(m metric.Meter, e *errs) *observers {
	var o observers
	var err error
	o.lastSuccess, err = m.Float64ObservableGauge(LastSuccess, metric.WithUnit("s"),
		metric.WithDescription("Unix time of the last successful fetch (absent before the first)."))
	e.add(err)
	o.keyAge, err = m.Float64ObservableGauge(KeyAge, metric.WithUnit("s"),
		metric.WithDescription("Time since the key served was first fetched."))
	e.add(err)
	o.state, err = m.Int64ObservableGauge(State, metric.WithUnit("{state}"),
		metric.WithDescription("1 for the state the source is in, 0 for the others."))
	e.add(err)
	o.rotations, err = m.Int64ObservableCounter(Rotations, metric.WithUnit("{rotation}"),
		metric.WithDescription("Changes of the key served."))
	e.add(err)
	o.staleServes, err = m.Int64ObservableCounter(StaleServes, metric.WithUnit("{token}"),
		metric.WithDescription("Keys served while refreshes fail (the last good key)."))
	e.add(err)
	o.invalidations, err = m.Int64ObservableCounter(Invalidations, metric.WithUnit("{invalidation}"),
		metric.WithDescription("Rejections (HTTP 401) reported for the current key."))
	e.add(err)
	o.forced, err = m.Int64ObservableCounter(ForcedRefreshes, metric.WithUnit("{refresh}"),
		metric.WithDescription("Fetches outside the schedule, by trigger."))
	e.add(err)
	return &o
}

func (o *observers) list() []metric.Observable {
	return []metric.Observable{o.lastSuccess, o.keyAge, o.state, o.rotations, o.staleServes, o.invalidations, o.forced}
}

func (o *observers) callback(base []attribute.KeyValue, stats func() SourceStats) metric.Callback {
	set := metric.WithAttributeSet(attribute.NewSet(base...))
	var byState [len(states)]metric.MeasurementOption
	for i, name := range states {
		byState[i] = metric.WithAttributeSet(attribute.NewSet(append(base[:2:2], AttrState.String(name))...))
	}
	var byTrigger [numTriggers]metric.MeasurementOption
	for i, name := range triggerNames {
		byTrigger[i] = metric.WithAttributeSet(attribute.NewSet(append(base[:2:2], AttrTrigger.String(name))...))
	}
	return func(_ context.Context, ob metric.Observer) error {
		st := stats()
		for i, name := range states {
			var v int64
			if name == st.State {
				v = 1
			}
			ob.ObserveInt64(o.state, v, byState[i])
		}
		if !st.LastSuccess.IsZero() {
			ob.ObserveFloat64(o.lastSuccess, float64(st.LastSuccess.UnixNano())/1e9, set)
		}
		if !st.KeySeen.IsZero() {
			ob.ObserveFloat64(o.keyAge, st.Now.Sub(st.KeySeen).Seconds(), set)
		}
		ob.ObserveInt64(o.rotations, int64(st.Rotations), set)
		ob.ObserveInt64(o.staleServes, int64(st.StaleServes), set)
		ob.ObserveInt64(o.invalidations, int64(st.Invalidations), set)
		for i := range byTrigger {
			ob.ObserveInt64(o.forced, int64(st.Forced[i]), byTrigger[i])
		}
		return nil
	}
}
