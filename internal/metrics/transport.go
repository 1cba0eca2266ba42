package metrics

import (
	"context"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Result classes of a request through the Transport.
const (
	Class2xx = iota
	Class3xx
	Class4xx
	Class5xx
	ClassOther   // a status outside 200–599
	ClassError   // the base RoundTripper failed
	ClassNoKey   // no key could be had (the TokenSource failed)
	ClassRefused // a disallowed host, refused (FailDisallowedHost)
	numClasses
)

var classNames = [numClasses]string{"2xx", "3xx", "4xx", "5xx", "other", "error", "no_key", "refused"}

// ClassOf classifies a response by its status.
func ClassOf(resp *http.Response) int {
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return Class2xx
	case c >= 300 && c < 400:
		return Class3xx
	case c >= 400 && c < 500:
		return Class4xx
	case c >= 500 && c < 600:
		return Class5xx
	}
	return ClassOther
}

// Transport is the instruments of a keyprovider.Transport. A nil
// *Transport records nothing.
type Transport struct {
	requests, replays, throttled, withheld metric.Int64Counter
	// The options are slices built once: an Add through the interface
	// with a fresh variadic slice would allocate on every request.
	byClass [numClasses][]metric.AddOption
	none    []metric.AddOption
}

// NewTransport creates the instruments of a Transport taking service's
// keys ("" when unknown) on mp (nil: the global MeterProvider). It returns
// nil, after logging once, if mp fails.
func NewTransport(mp metric.MeterProvider, logger *slog.Logger, service string) *Transport {
	m := meter(mp)
	var e errs
	svc := AttrService.String(service)
	t := &Transport{none: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(svc))}}
	var err error
	t.requests, err = m.Int64Counter(Requests, metric.WithUnit("{request}"),
		metric.WithDescription("Requests through the Transport, by result class."))
	e.add(err)
	t.replays, err = m.Int64Counter(Replays, metric.WithUnit("{request}"),
		metric.WithDescription("Requests sent again with a fresh key after a 401."))
	e.add(err)
	t.throttled, err = m.Int64Counter(Throttled, metric.WithUnit("{response}"),
		metric.WithDescription("429 responses, each one that package retry's client retries."))
	e.add(err)
	t.withheld, err = m.Int64Counter(Withheld, metric.WithUnit("{request}"),
		metric.WithDescription("Requests to a host not allowed the key, sent without it or refused."))
	e.add(err)
	if e.err != nil {
		failed(logger, e.err)
		return nil
	}
	for c, name := range classNames {
		t.byClass[c] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(svc, AttrResult.String(name)))}
	}
	return t
}

// Request counts a request that ended in class c.
func (t *Transport) Request(ctx context.Context, c int) {
	if t != nil {
		t.requests.Add(ctx, 1, t.byClass[c]...)
	}
}

// Response counts a request answered by resp: its class, and a 429.
func (t *Transport) Response(ctx context.Context, resp *http.Response) {
	if t == nil {
		return
	}
	t.requests.Add(ctx, 1, t.byClass[ClassOf(resp)]...)
	if resp.StatusCode == http.StatusTooManyRequests {
		t.throttled.Add(ctx, 1, t.none...)
	}
}

// Replay counts a request sent again after a 401.
func (t *Transport) Replay(ctx context.Context) {
	if t != nil {
		t.replays.Add(ctx, 1, t.none...)
	}
}

// Withhold counts a request to a host not allowed the key.
func (t *Transport) Withhold(ctx context.Context) {
	if t != nil {
		t.withheld.Add(ctx, 1, t.none...)
	}
}
