package sdktest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/env"
	"github.com/keyprovider/keyprovider/internal/metrics"
	"github.com/keyprovider/keyprovider/rotate"
)

const (
	keyA = "sk-tessera-metricsAAAA1111"
	keyB = "sk-tessera-metricsBBBB2222"
)

// vars is an environment the test changes under a running Source.
type vars struct {
	mu sync.Mutex
	m  map[string]string
}

func (v *vars) set(name, value string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if value == "" {
		delete(v.m, name)
		return
	}
	v.m[name] = value
}

func (v *vars) lookup(name string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.m[name]
	return s, ok
}

// exercise drives a Source and a Transport through every path that has an
// instrument, and returns what the reader collects.
func exercise(t *testing.T) metricdata.ResourceMetrics {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	ctx := context.Background()

	env0 := &vars{m: map[string]string{"TESSERA_API_KEY": keyA}}
	src, err := rotate.New(env.ForService(keyprovider.Tessera, env.WithLookupEnv(env0.lookup)),
		rotate.WithService(keyprovider.Tessera), rotate.WithMeterProvider(mp),
		rotate.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	if _, err := src.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Authorization") == "Bearer "+keyA && r.URL.Path == "/revoked":
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/throttled":
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer api.Close()
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer other.Close()
	u, _ := url.Parse(api.URL)
	client := &http.Client{Transport: keyprovider.NewTransport(src, keyprovider.WithAllowedHosts(u.Host))}
	get := func(base, path string) {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	get(api.URL, "/ok")
	get(api.URL, "/throttled")
	get(other.URL, "/withheld")
	env0.set("TESSERA_API_KEY", keyB) // rotated: the 401 forces a refresh and a replay
	get(api.URL, "/revoked")
	env0.set("TESSERA_API_KEY", "") // the backend loses the key: stale
	_, _ = src.Refresh(ctx)
	if _, err := src.Token(ctx); err != nil {
		t.Fatal(err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

func TestExporterHasEveryDocumentedMetric(t *testing.T) {
	rm := exercise(t)
	got := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != metrics.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, metrics.ScopeName)
		}
		for _, m := range sm.Metrics {
			got[m.Name] = m
		}
	}
	for _, name := range metrics.Documented {
		m, ok := got[name]
		if !ok {
			t.Errorf("%s: not exported", name)
			continue
		}
		if m.Unit == "" || m.Description == "" {
			t.Errorf("%s: unit %q, description %q: want both", name, m.Unit, m.Description)
		}
		if len(attrSets(m)) == 0 {
			t.Errorf("%s: no data points", name)
		}
	}
	if len(got) != len(metrics.Documented) {
		t.Errorf("exported %d metrics, documented %d", len(got), len(metrics.Documented))
	}
	wantPoint(t, got[metrics.Fetches], "keyprovider.result=not_found")
	wantPoint(t, got[metrics.Fetches], "keyprovider.backend=env")
	wantPoint(t, got[metrics.State], "keyprovider.state=stale")
	wantPoint(t, got[metrics.Requests], "keyprovider.result=2xx")
	wantPoint(t, got[metrics.Requests], "keyprovider.service=tessera")
	wantPoint(t, got[metrics.Replays], "keyprovider.service=tessera")
	wantPoint(t, got[metrics.ForcedRefreshes], "keyprovider.trigger=invalidate")
}

func TestAttributesAreLowCardinalityAndSecretFree(t *testing.T) {
	rm := exercise(t)
	allowed := map[attribute.Key]bool{metrics.AttrService: true, metrics.AttrBackend: true,
		metrics.AttrResult: true, metrics.AttrState: true, metrics.AttrTrigger: true}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, set := range attrSets(m) {
				for _, kv := range set.ToSlice() {
					v := kv.Value.Emit()
					if !allowed[kv.Key] {
						t.Errorf("%s: attribute %s is not one of the documented ones", m.Name, kv.Key)
					}
					for _, secret := range []string{keyA, keyB, "sk-tessera", "…", "/"} {
						if strings.Contains(v, secret) {
							t.Errorf("%s: attribute %s=%q holds %q", m.Name, kv.Key, v, secret)
						}
					}
				}
			}
		}
	}
}

// promNames are the names OpenTelemetry's Prometheus exporter gives the
// documented instruments.
func promNames(t *testing.T) map[string]bool {
	names := map[string]bool{}
	for _, sm := range exercise(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			n := strings.ReplaceAll(m.Name, ".", "_")
			if m.Unit == "s" {
				n += "_seconds"
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if d.IsMonotonic {
					n += "_total"
				}
			case metricdata.Histogram[float64]:
				names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
			}
			names[n] = true
		}
	}
	return names
}

func TestDeployFilesNameOnlyExportedMetrics(t *testing.T) {
	names := promNames(t)
	ref := regexp.MustCompile(`keyprovider_[a-z_]+`)
	labels := map[string]bool{"keyprovider_service": true, "keyprovider_backend": true,
		"keyprovider_result": true, "keyprovider_state": true, "keyprovider_trigger": true}
	for _, file := range []string{"grafana-dashboard.json", "prometheus-alerts.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", file))
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, n := range ref.FindAllString(string(b), -1) {
			if labels[n] {
				continue
			}
			seen++
			if !names[n] {
				t.Errorf("%s names %s, which keyprovider does not export", file, n)
			}
		}
		if seen == 0 {
			t.Errorf("%s names no metric", file)
		}
	}
}

func wantPoint(t *testing.T, m metricdata.Metrics, attr string) {
	t.Helper()
	for _, set := range attrSets(m) {
		for _, kv := range set.ToSlice() {
			if string(kv.Key)+"="+kv.Value.Emit() == attr {
				return
			}
		}
	}
	t.Errorf("%s: no data point with %s", m.Name, attr)
}

func attrSets(m metricdata.Metrics) []attribute.Set {
	var sets []attribute.Set
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	}
	return sets
}
