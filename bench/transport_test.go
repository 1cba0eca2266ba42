package bench

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/retry"
)

// canned is an in-memory base RoundTripper: it answers 200 with an empty
// body, so a benchmark measures only the authenticating layer.
type canned struct{}

func (canned) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") == "" {
		panic("no Authorization header")
	}
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req, Header: http.Header{}}, nil
}

func BenchmarkTransport(b *testing.B) {
	req, _ := http.NewRequest(http.MethodGet, "https://api.tesseraai.cloud/v1/models", nil)
	roundTrip := func(b *testing.B, rt http.RoundTripper) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := rt.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}
	b.Run("keyprovider", func(b *testing.B) {
		src := warmSource(b)
		roundTrip(b, keyprovider.NewTransport(src, keyprovider.WithAllowedHosts(keyprovider.Tessera.Host()), keyprovider.WithBase(canned{})))
	})
	// NewClient's stack: the retrier on top of the auth transport, on the
	// path where nothing is throttled.
	b.Run("keyprovider+retry", func(b *testing.B) {
		src := warmSource(b)
		roundTrip(b, retry.New(keyprovider.NewTransport(src, keyprovider.WithAllowedHosts(keyprovider.Tessera.Host()), keyprovider.WithBase(canned{}))))
	})
	// With metrics on (the OpenTelemetry SDK): one counter Add a request.
	b.Run("keyprovider-metered", func(b *testing.B) {
		src := meteredSource(b)
		roundTrip(b, keyprovider.NewTransport(src, keyprovider.WithAllowedHosts(keyprovider.Tessera.Host()), keyprovider.WithBase(canned{})))
	})
	b.Run("oauth2", func(b *testing.B) {
		roundTrip(b, &oauth2.Transport{Source: warmOAuth2(b), Base: canned{}})
	})
	b.Run("hand-written-clone", func(b *testing.B) {
		roundTrip(b, handWritten{key: benchKey, base: canned{}})
	})
}

// handWritten is what a user might write instead: req.Clone and
// Header.Set with the bearer value built per request.
type handWritten struct {
	key  string
	base http.RoundTripper
}

func (h handWritten) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(h.key))
	return h.base.RoundTrip(r)
}
