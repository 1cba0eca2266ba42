package rotate

import (
	"path"
	"reflect"

	"go.opentelemetry.io/otel/metric"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/metrics"
)

// MeterProvider returns the MeterProvider of the Source's metrics (nil for
// the global one). A keyprovider.Transport over the Source counts its
// requests on it too.
func (s *Source) MeterProvider() metric.MeterProvider { return s.o.MeterProvider }

// Service returns the service whose keys the Source validates
// (Options.Service). A keyprovider.Transport over the Source labels its
// metrics with its name.
func (s *Source) Service() keyprovider.Service { return s.o.Service }

// metricStats is what the Source's observable instruments read.
func (s *Source) metricStats() metrics.SourceStats {
	h := s.Health()
	s.mu.Lock()
	forced := [...]uint64{metrics.TriggerInvalidate: s.invalidateFetches, metrics.TriggerWatch: s.watchFetches, metrics.TriggerRefresh: s.refreshCalls}
	s.mu.Unlock()
	return metrics.SourceStats{
		State: h.State.String(), Now: h.At, LastSuccess: h.LastSuccess, KeySeen: h.KeySince,
		Rotations: h.Rotations, StaleServes: h.StaleServes, Invalidations: h.Invalidations,
		Forced: forced,
	}
}

// backendName is the backend attribute of p's metrics: name when set,
// else the scheme of a keyprovider.EnvProvider's source ("env" for a key
// in the variable itself), else the name of p's type's package ("vault",
// "awssm"...), "file" for a file:// Provider of package keyprovider, and
// "custom" for another of its types (a ProviderFunc).
func backendName(p keyprovider.Provider, name string) string {
	if name != "" {
		return name
	}
	if e, ok := p.(interface{ Source() keyprovider.EnvSource }); ok {
		if sc := e.Source().Ref.Scheme; sc != "" {
			return sc
		}
		return "env"
	}
	t := reflect.TypeOf(p)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch pkg := path.Base(t.PkgPath()); {
	case pkg == "keyprovider" && t.Name() == "fileProvider":
		return "file"
	case pkg == "keyprovider", pkg == ".", pkg == "":
		return "custom"
	default:
		return pkg
	}
}
