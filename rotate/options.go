package rotate

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/keyprovider/keyprovider"
)

// Defaults of the [Options] fields whose zero value means "the default".
const (
	// DefaultRefreshInterval: API keys are long-lived and rotated by
	// people or by a rotation job; five minutes bounds how long a replica
	// keeps a rotated-away key while costing a fleet of 10,000 replicas
	// about 33 backend reads a second.
	DefaultRefreshInterval = 5 * time.Minute
	// DefaultMaxStale: a backend outage shorter than a day never takes a
	// service down; [Source.Health] reports [Stale] from the first failed
	// refresh, so a readiness probe or an alert sees it long before.
	DefaultMaxStale = 24 * time.Hour
	// DefaultMinRefreshInterval bounds the fetches forced by
	// [Source.Invalidate] to one per this interval.
	DefaultMinRefreshInterval = 5 * time.Second
	// DefaultBackoffBase is the first delay after a failed refresh.
	DefaultBackoffBase = time.Second
	// DefaultFetchTimeout bounds one backend fetch.
	DefaultFetchTimeout = 30 * time.Second
	// DefaultCloseTimeout bounds how long [Source.Close] waits for a fetch
	// or an OnRotate callback that does not return: long enough for a
	// Provider that honours its context to notice the cancellation, short
	// enough not to stall a shutdown.
	DefaultCloseTimeout = 5 * time.Second
	// DefaultWatchDebounce is how long after a change notice of a
	// [Watcher] the key is fetched: long enough to take a burst of events
	// (the kubelet's swap of a mounted secret is a handful, a write in
	// place a truncate and a write) as one change, short enough that a
	// rotation is picked up well within a second.
	DefaultWatchDebounce = 100 * time.Millisecond
)

// Options configure a [Source]. The zero value of every field means its
// default, so a zero Options is a good configuration. Each field users set
// has a With helper of the same name; New rejects negative durations.
type Options struct {
	// RefreshInterval is how often the key is fetched again in the
	// background. Zero means DefaultRefreshInterval.
	RefreshInterval time.Duration

	// Slot and Slots choose when in each RefreshInterval this Source
	// refreshes: its phase. Refreshes fall at that phase of every interval
	// counted from the Unix epoch, so neither forced refreshes nor failed
	// ones move them, and a fleet never falls into step (after an outage,
	// say). With Slots zero, the default, the phase
	// is drawn once, uniformly over the interval, when the Source is made:
	// replicas started in the same instant are spread over the interval at
	// once and stay so. With Slots > 0 the phase is Slot/Slots of the
	// interval: give every replica of a fleet its own Slot in [0, Slots)
	// (a StatefulSet ordinal, say) and its refreshes are exactly even. New
	// rejects a negative Slots, and a Slot outside [0, Slots) (so a Slot
	// without Slots too).
	//
	// There is no jitter from one refresh to the next: the random phase is
	// what spreads a fleet, and moving each refresh as well would only turn
	// an even load into a noisy one (BENCHMARKS.md has the figures).
	Slot, Slots int

	// MaxStale is how long after the last successful fetch the last good
	// key is still served while refreshes fail. Past it, Token returns an
	// error wrapping keyprovider.ErrUnavailable and the last backend error.
	// Zero means DefaultMaxStale.
	MaxStale time.Duration

	// MinRefreshInterval is the least time between two fetches forced by
	// Invalidate, so that a revoked key under a flood of 401s costs the
	// backend at most one fetch per interval. Zero means
	// DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration

	// BackoffBase and BackoffMax shape the exponential backoff, with
	// jitter over the upper half of each step, between failed refreshes.
	// Zero BackoffBase means DefaultBackoffBase. Zero BackoffMax means
	// RefreshInterval: once its backoff has grown, a Source whose backend
	// is down asks about as often as it refreshes when the backend is up
	// (every ½–1 interval), so an outage does not multiply a fleet's load
	// on the backend while the last good key is being served anyway.
	BackoffBase, BackoffMax time.Duration

	// FetchTimeout bounds each backend fetch. The fetch runs on the
	// Source's own context, not a caller's, so that one impatient caller
	// cannot cancel a fetch others wait for. Zero means
	// DefaultFetchTimeout.
	FetchTimeout time.Duration

	// Service, when set, checks every fetched key with
	// [keyprovider.Service.Validate] before it replaces the current one.
	// The zero Service checks only that the key can go in a header.
	Service keyprovider.Service

	// Verify, when set, is called with every fetched key that differs from
	// the current one, before it is promoted (for example a cheap
	// authenticated call). An error keeps the current key and counts as a
	// failed refresh. Nil means no check.
	Verify func(ctx context.Context, k keyprovider.Key) error

	// Logger receives refreshes, rotations and failures, with fingerprints
	// only. Nil means slog.Default().
	Logger *slog.Logger

	// Clock is the source of time. Nil means the system clock.
	Clock Clock

	// Rand returns a uniform float64 in [0, 1), for the random phase and
	// the backoff's jitter. Nil means math/rand/v2.Float64. Tests set it to
	// make both deterministic.
	Rand func() float64

	// SharedProvider says that the Provider is used by others too (several
	// Sources over one Provider, say), so that [Source.Close] leaves it
	// open. False, the default, means the Source owns it: Close closes it
	// if it is an [io.Closer].
	SharedProvider bool

	// CloseTimeout bounds how long [Source.Close] waits, by Clock (a fake
	// clock has to be advanced past it), for a fetch or an OnRotate
	// callback still running; past it, Close returns an error wrapping
	// [ErrStillRunning]. Zero means DefaultCloseTimeout.
	CloseTimeout time.Duration

	// WatchDebounce is how long, by Clock, the Source waits after a change
	// notice of a [Watcher] Provider before it fetches: notices arriving
	// meanwhile are part of the same change. At most one fetch per
	// WatchDebounce follows from notices. Zero means DefaultWatchDebounce.
	WatchDebounce time.Duration

	// NoWatch turns off the subscription to a [Watcher] Provider's change
	// notices: the key is then fetched on schedule only. False, the
	// default, means a Provider that implements Watcher is watched.
	NoWatch bool

	// MeterProvider receives the Source's metrics (fetches, state, key
	// age...; see the README's table) and those of a keyprovider.Transport
	// over the Source. Nil means the global MeterProvider
	// (otel.GetMeterProvider), which records nothing until one is set.
	MeterProvider metric.MeterProvider

	// Backend names the Provider's backend in the metrics' attributes
	// ("vault", "env"...). Empty means a name derived from the Provider:
	// the scheme of a keyprovider.EnvProvider's source, else the name of
	// the Provider type's package. Keep it low in cardinality: a backend's
	// name, never a path or a reference.
	Backend string
}

// Option changes [Options].
type Option func(*Options)

// WithRefreshInterval sets Options.RefreshInterval.
func WithRefreshInterval(d time.Duration) Option {
	return func(o *Options) { o.RefreshInterval = d }
}

// WithSlot sets Options.Slot and Options.Slots: this Source refreshes in
// slot slot of slots equal parts of every RefreshInterval.
func WithSlot(slot, slots int) Option {
	return func(o *Options) { o.Slot, o.Slots = slot, slots }
}

// WithMaxStale sets Options.MaxStale.
func WithMaxStale(d time.Duration) Option { return func(o *Options) { o.MaxStale = d } }

// WithMinRefreshInterval sets Options.MinRefreshInterval.
func WithMinRefreshInterval(d time.Duration) Option {
	return func(o *Options) { o.MinRefreshInterval = d }
}

// WithBackoffBase sets Options.BackoffBase.
func WithBackoffBase(d time.Duration) Option { return func(o *Options) { o.BackoffBase = d } }

// WithBackoffMax sets Options.BackoffMax.
func WithBackoffMax(d time.Duration) Option { return func(o *Options) { o.BackoffMax = d } }

// WithFetchTimeout sets Options.FetchTimeout.
func WithFetchTimeout(d time.Duration) Option { return func(o *Options) { o.FetchTimeout = d } }

// WithService sets Options.Service.
func WithService(svc keyprovider.Service) Option { return func(o *Options) { o.Service = svc } }

// WithVerify sets Options.Verify.
func WithVerify(verify func(ctx context.Context, k keyprovider.Key) error) Option {
	return func(o *Options) { o.Verify = verify }
}

// WithLogger sets Options.Logger.
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// WithClock sets Options.Clock.
func WithClock(c Clock) Option { return func(o *Options) { o.Clock = c } }

// WithRand sets Options.Rand.
func WithRand(rand func() float64) Option { return func(o *Options) { o.Rand = rand } }

// WithSharedProvider sets Options.SharedProvider: Close leaves the Provider
// open for the others that use it.
func WithSharedProvider() Option { return func(o *Options) { o.SharedProvider = true } }

// WithCloseTimeout sets Options.CloseTimeout.
func WithCloseTimeout(d time.Duration) Option { return func(o *Options) { o.CloseTimeout = d } }

// WithWatchDebounce sets Options.WatchDebounce.
func WithWatchDebounce(d time.Duration) Option { return func(o *Options) { o.WatchDebounce = d } }

// WithNoWatch sets Options.NoWatch: the Provider's change notices are
// ignored, and the key is fetched on schedule only.
func WithNoWatch() Option { return func(o *Options) { o.NoWatch = true } }

// WithMeterProvider sets Options.MeterProvider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *Options) { o.MeterProvider = mp }
}

// WithBackend sets Options.Backend.
func WithBackend(name string) Option { return func(o *Options) { o.Backend = name } }

// validate rejects what no default can stand for.
func (o Options) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"RefreshInterval", o.RefreshInterval}, {"MaxStale", o.MaxStale},
		{"MinRefreshInterval", o.MinRefreshInterval}, {"BackoffBase", o.BackoffBase},
		{"BackoffMax", o.BackoffMax}, {"FetchTimeout", o.FetchTimeout}, {"CloseTimeout", o.CloseTimeout},
		{"WatchDebounce", o.WatchDebounce},
	} {
		if d.v < 0 {
			return fmt.Errorf("%s %s: want ≥ 0 (0 means the default)", d.name, d.v)
		}
	}
	if o.Slots < 0 || o.Slot < 0 || o.Slot > 0 && o.Slot >= o.Slots {
		return fmt.Errorf("slot %d of %d: want 0 ≤ Slot < Slots", o.Slot, o.Slots)
	}
	return nil
}

// resolve fills in the defaults and clamps out-of-range values.
func (o Options) resolve() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.RefreshInterval, DefaultRefreshInterval)
	def(&o.MaxStale, DefaultMaxStale)
	def(&o.MinRefreshInterval, DefaultMinRefreshInterval)
	def(&o.BackoffBase, DefaultBackoffBase)
	def(&o.BackoffMax, o.RefreshInterval)
	def(&o.FetchTimeout, DefaultFetchTimeout)
	def(&o.CloseTimeout, DefaultCloseTimeout)
	def(&o.WatchDebounce, DefaultWatchDebounce)
	if o.BackoffMax < o.BackoffBase {
		o.BackoffMax = o.BackoffBase
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	return o
}
