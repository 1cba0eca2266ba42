package standin_test

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest/standin"
)

func TestEmbeddings(t *testing.T) {
	key := standin.NewKey(keyprovider.Tessera)
	s := standin.New(t, standin.WithKeys(key), standin.WithModels("m1", "m2"))
	tests := []struct {
		name      string
		body      string
		wantCode  int
		wantError string // the error's param (400) or code (404)
		wantN     int
		wantDims  int
	}{
		{"one string", `{"model":"m1","input":"hello world"}`, 200, "", 1, standin.DefaultDimensions},
		{"array", `{"model":"m2","input":["a","b","c"]}`, 200, "", 3, standin.DefaultDimensions},
		{"dimensions", `{"model":"m1","input":"x","dimensions":20}`, 200, "", 1, 20},
		{"float format", `{"model":"m1","input":"x","encoding_format":"float"}`, 200, "", 1, standin.DefaultDimensions},
		{"empty array", `{"model":"m1","input":[]}`, 400, "input", 0, 0},
		{"empty string", `{"model":"m1","input":""}`, 400, "input", 0, 0},
		{"an empty string in the array", `{"model":"m1","input":["a",""]}`, 400, "input", 0, 0},
		{"number input", `{"model":"m1","input":3}`, 400, "input", 0, 0},
		{"no input", `{"model":"m1"}`, 400, "input", 0, 0},
		{"no model", `{"input":"x"}`, 400, "model", 0, 0},
		{"unknown model", `{"model":"gpt-4","input":"x"}`, 404, "model_not_found", 0, 0},
		{"too many dimensions", `{"model":"m1","input":"x","dimensions":4097}`, 400, "dimensions", 0, 0},
		{"unknown format", `{"model":"m1","input":"x","encoding_format":"int8"}`, 400, "encoding_format", 0, 0},
		{"not json", `hello`, 400, "", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := call(t, s, http.MethodPost, "/embeddings", bearer(key), tc.body)
			if got.status != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", got.status, tc.wantCode, got.raw)
			}
			if tc.wantCode != http.StatusOK {
				e, _ := got.body["error"].(map[string]any)
				if e == nil || e["message"] == "" || (tc.wantError != "" && e["param"] != tc.wantError && e["code"] != tc.wantError) {
					t.Errorf("error body %s, want param or code %q", got.raw, tc.wantError)
				}
				return
			}
			var resp struct {
				Object string `json:"object"`
				Model  string `json:"model"`
				Data   []struct {
					Object    string    `json:"object"`
					Index     int       `json:"index"`
					Embedding []float64 `json:"embedding"`
				} `json:"data"`
				Usage struct {
					PromptTokens int `json:"prompt_tokens"`
					TotalTokens  int `json:"total_tokens"`
				} `json:"usage"`
			}
			decode(t, got.raw, &resp)
			if resp.Object != "list" || resp.Model == "" || len(resp.Data) != tc.wantN || resp.Usage.TotalTokens < tc.wantN {
				t.Fatalf("response %s: want a list of %d embeddings with usage", got.raw, tc.wantN)
			}
			for i, d := range resp.Data {
				if d.Object != "embedding" || d.Index != i || len(d.Embedding) != tc.wantDims {
					t.Errorf("data[%d] = %s #%d, %d dimensions; want embedding #%d, %d", i, d.Object, d.Index, len(d.Embedding), i, tc.wantDims)
				}
			}
		})
	}
}

func decode(t *testing.T, raw string, v any) {
	t.Helper()
	if err := jsonUnmarshal(raw, v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
}

func TestEmbeddingsAreDeterministicUnitVectors(t *testing.T) {
	key := standin.NewKey(keyprovider.Tessera)
	s := standin.New(t, standin.WithKeys(key))
	var a, b struct {
		Data []struct{ Embedding []float64 } `json:"data"`
	}
	body := `{"model":"Qwen/Qwen3-Embedding-8B","input":["same","other"],"dimensions":40}`
	decode(t, call(t, s, http.MethodPost, "/embeddings", bearer(key), body).raw, &a)
	decode(t, call(t, s, http.MethodPost, "/embeddings", bearer(key), body).raw, &b)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Error("the same request got two different embeddings")
	}
	if fmt.Sprint(a.Data[0]) == fmt.Sprint(a.Data[1]) {
		t.Error("two texts got the same embedding")
	}
	if want := standin.Embed("same", 40); fmt.Sprint(a.Data[0].Embedding) != fmt.Sprint(want) {
		t.Errorf("embedding differs from Embed(\"same\", 40)")
	}
	for _, n := range []int{0, 1, 16, 17, 100} {
		v := standin.Embed("text", n)
		var norm float64
		for _, x := range v {
			norm += x * x
		}
		if len(v) != max(n, 1) || math.Abs(norm-1) > 1e-9 {
			t.Errorf("Embed(text, %d): %d components, squared norm %v; want %d, 1", n, len(v), norm, max(n, 1))
		}
	}
}

func TestEmbeddingsInBase64(t *testing.T) {
	key := standin.NewKey(keyprovider.Tessera)
	s := standin.New(t, standin.WithKeys(key), standin.WithDimensions(12))
	var resp struct {
		Data []struct{ Embedding string } `json:"data"`
	}
	decode(t, call(t, s, http.MethodPost, "/embeddings", bearer(key),
		`{"model":"Qwen/Qwen3-Embedding-8B","input":"hi","encoding_format":"base64"}`).raw, &resp)
	raw, err := base64.StdEncoding.DecodeString(resp.Data[0].Embedding)
	if err != nil {
		t.Fatal(err)
	}
	want := standin.Embed("hi", 12)
	if len(raw) != 4*len(want) {
		t.Fatalf("%d bytes, want %d", len(raw), 4*len(want))
	}
	for i, w := range want {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); got != float32(w) {
			t.Errorf("component %d = %v, want %v", i, got, float32(w))
		}
	}
}

func TestDimensionsOptionIsClamped(t *testing.T) {
	key := standin.NewKey(keyprovider.Tessera)
	for _, tc := range []struct{ set, want int }{{0, standin.DefaultDimensions}, {-3, standin.DefaultDimensions}, {5, 5}, {1 << 20, standin.MaxDimensions}} {
		s := standin.New(t, standin.WithKeys(key), standin.WithDimensions(tc.set))
		var resp struct {
			Data []struct{ Embedding []float64 } `json:"data"`
		}
		decode(t, call(t, s, http.MethodPost, "/embeddings", bearer(key), embedBody).raw, &resp)
		if got := len(resp.Data[0].Embedding); got != tc.want {
			t.Errorf("WithDimensions(%d): %d dimensions, want %d", tc.set, got, tc.want)
		}
	}
}

func TestModels(t *testing.T) {
	key := standin.NewKey(keyprovider.Tessera)
	for _, tc := range []struct {
		opts []standin.Option
		want []string
	}{
		{nil, []string{standin.DefaultModel}},
		{[]standin.Option{standin.WithModels("a", "b")}, []string{"a", "b"}},
	} {
		s := standin.New(t, append(tc.opts, standin.WithKeys(key))...)
		var resp struct {
			Object string
			Data   []struct{ ID, Object, OwnedBy string }
		}
		decode(t, call(t, s, http.MethodGet, "/models", bearer(key), "").raw, &resp)
		var ids []string
		for _, m := range resp.Data {
			if m.Object != "model" {
				t.Errorf("model %s has object %q", m.ID, m.Object)
			}
			ids = append(ids, m.ID)
		}
		if resp.Object != "list" || fmt.Sprint(ids) != fmt.Sprint(tc.want) {
			t.Errorf("models %q (object %q), want %q in a list", ids, resp.Object, tc.want)
		}
	}
}

func TestOrganizationsArePaged(t *testing.T) {
	key := standin.NewKey(keyprovider.Tesseral)
	var orgs []standin.Organization
	for i := range 5 {
		orgs = append(orgs, standin.Organization{ID: fmt.Sprintf("org_%d", i), DisplayName: fmt.Sprintf("Org %d", i)})
	}
	s := standin.New(t, standin.WithKeys(key), standin.WithOrganizations(orgs...), standin.WithPageSize(2))

	var seen []string
	token, pages := "", 0
	for {
		pages++
		if pages > 5 {
			t.Fatal("more pages than organizations")
		}
		got := call(t, s, http.MethodGet, "/organizations?pageToken="+url.QueryEscape(token), bearer(key), "")
		var page struct {
			Organizations []standin.Organization
			NextPageToken string
		}
		decode(t, got.raw, &page)
		if len(page.Organizations) > 2 {
			t.Errorf("page of %d, want at most 2", len(page.Organizations))
		}
		for _, o := range page.Organizations {
			seen = append(seen, o.ID)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	if pages != 3 || strings.Join(seen, ",") != "org_0,org_1,org_2,org_3,org_4" {
		t.Errorf("%d pages listing %v, want 3 pages listing all five in order", pages, seen)
	}

	bad := call(t, s, http.MethodGet, "/organizations?pageToken=nonsense", bearer(key), "")
	if bad.status != http.StatusBadRequest || bad.body["code"] != "invalid_argument" {
		t.Errorf("bad page token: %d %s, want 400 invalid_argument", bad.status, bad.raw)
	}
}

func TestOrganizationsDefaultAndEmpty(t *testing.T) {
	key := standin.NewKey(keyprovider.Tesseral)
	for _, tc := range []struct {
		opts []standin.Option
		want int
	}{
		{nil, len(standin.DefaultOrganizations)},
		{[]standin.Option{standin.WithOrganizations()}, 0},
	} {
		s := standin.New(t, append(tc.opts, standin.WithKeys(key))...)
		var page struct{ Organizations []standin.Organization }
		decode(t, call(t, s, http.MethodGet, "/organizations", bearer(key), "").raw, &page)
		if len(page.Organizations) != tc.want {
			t.Errorf("%d organizations, want %d", len(page.Organizations), tc.want)
		}
	}
}

func TestStatsCountByRouteStatusAndFingerprint(t *testing.T) {
	key, old := standin.NewKey(keyprovider.Tessera), standin.NewKey(keyprovider.Tessera)
	s := standin.New(t, standin.WithKeys(key))
	var bodies []string
	for _, r := range []struct {
		method, path, body string
		auth               []string
	}{
		{http.MethodPost, "/embeddings", embedBody, bearer(key)},
		{http.MethodPost, "/embeddings", embedBody, bearer(key)},
		{http.MethodPost, "/embeddings", `{}`, bearer(key)},
		{http.MethodGet, "/models", "", bearer(old)},
		{http.MethodGet, "/organizations", "", nil},
	} {
		bodies = append(bodies, call(t, s, r.method, r.path, r.auth, r.body).raw)
	}

	st := s.Stats()
	checks := []struct {
		name      string
		got, want int
	}{
		{"Requests", st.Requests, 5},
		{"Accepted", st.Accepted, 3},
		{"Rejected", st.Rejected, 2},
		{"ByRoute[embeddings]", st.ByRoute[standin.RouteEmbeddings], 3},
		{"ByRoute[models]", st.ByRoute[standin.RouteModels], 1},
		{"ByRoute[organizations]", st.ByRoute[standin.RouteOrganizations], 1},
		{"ByStatus[200]", st.ByStatus[200], 2},
		{"ByStatus[400]", st.ByStatus[400], 1},
		{"ByStatus[401]", st.ByStatus[401], 2},
		{"ByKey[key]", st.ByKey[standin.Fingerprint(key)], 3},
		{"ByKey[old]", st.ByKey[standin.Fingerprint(old)], 1},
		{"len(ByKey)", len(st.ByKey), 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if st.LastAccepted != keyprovider.NewKey(key, "").Fingerprint() {
		t.Errorf("LastAccepted = %s, want the key's fingerprint", st.LastAccepted)
	}

	// Nothing the stand-in reports or answers shows a key. (The failure
	// message names the key by fingerprint: it must not leak it either.)
	shown := map[string]string{
		"Stats": fmt.Sprintf("%v %+v %#v", st, st, st), "ValidKeys": fmt.Sprint(s.ValidKeys()),
		"bodies": strings.Join(bodies, ""),
	}
	for where, text := range shown {
		for _, k := range []string{key, old} {
			if strings.Contains(text, strings.TrimPrefix(k, keyprovider.Tessera.KeyPrefix)) {
				t.Errorf("%s shows the key %s", where, standin.Fingerprint(k))
			}
		}
	}

	st.ByRoute[standin.RouteModels] = 99 // a copy: the stand-in's count is untouched
	s.ResetStats()
	if got := s.Stats(); got.Requests != 0 || len(got.ByRoute) != 0 || got.LastAccepted != "" {
		t.Errorf("after ResetStats: %+v", got)
	}
	if got := embed(t, s, key); got != http.StatusOK {
		t.Errorf("ResetStats dropped the key: %d", got)
	}
}

func TestConcurrentRequestsAndRotations(t *testing.T) {
	keys := make([]string, 5)
	for i := range keys {
		keys[i] = standin.NewKey(keyprovider.Tessera)
	}
	s := standin.New(t, standin.WithKeys(keys[0]))
	const workers, each = 4, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if w == 0 && i%2 == 0 {
					s.Rotate(keys[(i/2)%len(keys)], 0)
				}
				req, _ := http.NewRequest(http.MethodGet, s.BaseURL()+"/models", nil)
				req.Header.Set("Authorization", "Bearer "+keys[i%len(keys)])
				if resp, err := s.Client().Do(req); err == nil {
					resp.Body.Close()
				}
				_ = s.Stats()
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	if st.Requests != workers*each || st.Accepted+st.Rejected != st.Requests {
		t.Errorf("Requests %d, Accepted %d + Rejected %d; want %d in all", st.Requests, st.Accepted, st.Rejected, workers*each)
	}
}

func TestListensOnLoopbackAndCloses(t *testing.T) {
	s, err := standin.Start()
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(s.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() || u.Scheme != "http" || u.Path != "/v1" {
		t.Errorf("BaseURL %s, want http://<loopback IP>:<port>/v1", s.BaseURL())
	}
	svc := s.Service(keyprovider.Tessera)
	if svc.BaseURL != s.BaseURL() || svc.EnvVar != keyprovider.Tessera.EnvVar || svc.KeyPrefix != keyprovider.Tessera.KeyPrefix {
		t.Errorf("Service = %+v, want Tessera with the stand-in's BaseURL", svc)
	}
	t.Setenv(keyprovider.Tessera.BaseURLEnvVar, "https://elsewhere.example/v1")
	if got, err := svc.ResolveBaseURL(); err != nil || got.BaseURL != s.BaseURL() {
		t.Errorf("ResolveBaseURL with TESSERA_BASE_URL set elsewhere = %q, %v; want the stand-in's %s", got.BaseURL, err, s.BaseURL())
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, err := http.Get(s.BaseURL() + "/models"); err == nil {
		t.Error("a closed stand-in still answers")
	}
}

func TestNewClosesWhenTheTestEnds(t *testing.T) {
	var base string
	t.Run("inner", func(t *testing.T) { base = standin.New(t).BaseURL() })
	if _, err := http.Get(base + "/models"); err == nil {
		t.Error("the stand-in of a finished test still answers")
	}
}

func TestNewKey(t *testing.T) {
	for _, svc := range keyprovider.KnownServices() {
		a, b := standin.NewKey(svc), standin.NewKey(svc)
		if a == b {
			t.Errorf("%s: two NewKey calls gave the same key", svc.Name)
		}
		if err := svc.Validate(a); err != nil {
			t.Errorf("%s: NewKey's key does not validate: %v", svc.Name, err)
		}
	}
}
