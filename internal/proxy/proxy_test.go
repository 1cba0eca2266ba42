package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestCopyHeaderDropsHopByHop(t *testing.T) {
	src := http.Header{
		"Connection":        {"keep-alive, X-Private"},
		"X-Private":         {"1"},
		"Keep-Alive":        {"timeout=5"},
		"Transfer-Encoding": {"chunked"},
		"Upgrade":           {"websocket"},
		"Te":                {"trailers"},
		"Content-Type":      {"application/json"},
		"X-Request-Id":      {"a", "b"},
	}
	dst := http.Header{}
	copyHeader(dst, src)
	want := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"a", "b"}}
	if len(dst) != len(want) {
		t.Fatalf("got %v, want %v", dst, want)
	}
	for k, v := range want {
		if strings.Join(dst[k], ",") != strings.Join(v, ",") {
			t.Errorf("%s: got %v, want %v", k, dst[k], v)
		}
	}
}

func TestUnderBase(t *testing.T) {
	h := New(Options{Upstream: &url.URL{Scheme: "https", Host: "api.example", Path: "/v1/"}})
	tests := []struct {
		path string
		want bool
	}{
		{"/v1", true}, {"/v1/", true}, {"/v1/embeddings", true}, {"/v1/a/b", true},
		{"/", false}, {"/v10", false}, {"/v2/x", false}, {"/v1/../x", false}, {"/v1/./x", false}, {"/v1/..", false},
	}
	for _, tt := range tests {
		u := &url.URL{Path: tt.path}
		if got := h.underBase(u); got != tt.want {
			t.Errorf("underBase(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestAuthorized(t *testing.T) {
	h := New(Options{Upstream: &url.URL{Path: "/"}, Token: "kpl_0123456789abcdef0123"})
	tests := []struct {
		auth []string
		want bool
	}{
		{[]string{"Bearer kpl_0123456789abcdef0123"}, true},
		{[]string{"bearer kpl_0123456789abcdef0123"}, true},
		{[]string{"Bearer kpl_0123456789abcdef012"}, false},
		{[]string{"Bearer kpl_0123456789abcdef01234"}, false},
		{[]string{"Basic kpl_0123456789abcdef0123"}, false},
		{[]string{"kpl_0123456789abcdef0123"}, false},
		{[]string{"Bearer kpl_0123456789abcdef0123", "Bearer kpl_0123456789abcdef0123"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := h.authorized(tt.auth); got != tt.want {
			t.Errorf("authorized(%d values) = %v, want %v", len(tt.auth), got, tt.want)
		}
	}
}

func TestRedirect(t *testing.T) {
	body := strings.NewReader("{}")
	req, _ := http.NewRequest(http.MethodPost, "https://api.example/v1/a", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cookie", "c=1")
	tests := []struct {
		status      int
		loc         string
		wantMethod  string
		wantURL     string
		wantBody    bool
		wantCookie  bool
		wantFollows bool
	}{
		{http.StatusFound, "/v1/b", "GET", "https://api.example/v1/b", false, true, true},
		{http.StatusSeeOther, "https://cdn.example/x", "GET", "https://cdn.example/x", false, false, true},
		{http.StatusTemporaryRedirect, "/v1/c", "POST", "https://api.example/v1/c", true, true, true},
		{http.StatusPermanentRedirect, "https://other.example/c", "POST", "https://other.example/c", true, false, true},
		{http.StatusOK, "/v1/b", "", "", false, false, false},
		{http.StatusFound, "", "", "", false, false, false},
		{http.StatusFound, "ftp://x/y", "", "", false, false, false},
	}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
		if tt.loc != "" {
			resp.Header.Set("Location", tt.loc)
		}
		next := redirect(req, resp)
		if (next != nil) != tt.wantFollows {
			t.Fatalf("%d %q: follows = %v, want %v", tt.status, tt.loc, next != nil, tt.wantFollows)
		}
		if next == nil {
			continue
		}
		if next.Method != tt.wantMethod || next.URL.String() != tt.wantURL {
			t.Errorf("%d %q: got %s %s, want %s %s", tt.status, tt.loc, next.Method, next.URL, tt.wantMethod, tt.wantURL)
		}
		if hasBody := next.Body != nil && next.Body != http.NoBody; hasBody != tt.wantBody {
			t.Errorf("%d %q: body = %v, want %v", tt.status, tt.loc, hasBody, tt.wantBody)
		}
		if got := next.Header.Get("Cookie") != ""; got != tt.wantCookie {
			t.Errorf("%d %q: cookie kept = %v, want %v", tt.status, tt.loc, got, tt.wantCookie)
		}
		if next.Header.Get("Authorization") != "" {
			t.Errorf("%d %q: a redirect never carries an Authorization of its own", tt.status, tt.loc)
		}
	}
}

func TestFingerprintsCache(t *testing.T) {
	var f fingerprints
	a := f.of("Bearer sk-tessera-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	if strings.Contains(a, "AAAAAAAAAAAA") || a == "none" {
		t.Fatalf("fingerprint %q", a)
	}
	if f.of("Bearer sk-tessera-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") != a {
		t.Error("the same key, another fingerprint")
	}
	if f.of("Bearer sk-tessera-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB") == a {
		t.Error("another key, the same fingerprint")
	}
	if f.of("Basic x") != "none" {
		t.Error("a non-bearer value has no fingerprint")
	}
}
