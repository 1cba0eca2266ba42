package standin

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider"
)

// Route names one route of the stand-in, as "METHOD /path". [Stats.ByRoute]
// and [Server.Deny] take these.
type Route string

// The stand-in's routes.
const (
	// RouteEmbeddings is Tessera's embeddings call.
	RouteEmbeddings Route = "POST /v1/embeddings"
	// RouteModels is Tessera's model listing.
	RouteModels Route = "GET /v1/models"
	// RouteOrganizations is the Tesseral Backend API's organization listing.
	RouteOrganizations Route = "GET /v1/organizations"
)

// Organization is one organization of the Tesseral Backend API, with the
// fields the stand-in fills.
type Organization struct {
	// ID is the organization's ID: "org_01standin0acme".
	ID string `json:"id"`
	// DisplayName is its human-readable name: "Acme Corp".
	DisplayName string `json:"displayName"`
}

// DefaultOrganizations are the organizations GET /v1/organizations lists
// when [Options.Organizations] is nil. A stand-in copies them when it
// starts.
var DefaultOrganizations = []Organization{
	{ID: "org_01standin0acme", DisplayName: "Acme Corp"},
	{ID: "org_01standin0globex", DisplayName: "Globex"},
	{ID: "org_01standin0initech", DisplayName: "Initech"},
}

// DefaultModel is the model GET /v1/models lists, and POST /v1/embeddings
// accepts, when [Options.Models] is empty: the model of Tessera's own
// examples.
const DefaultModel = "Qwen/Qwen3-Embedding-8B"

// Defaults and bounds of [Options].
const (
	// DefaultDimensions is the length of the embeddings the stand-in
	// returns when neither [Options.Dimensions] nor the request sets one.
	DefaultDimensions = 8
	// MaxDimensions is the longest embedding the stand-in returns.
	MaxDimensions = 4096
	// DefaultPageSize is the number of organizations per page when
	// [Options.PageSize] is zero.
	DefaultPageSize = 10
)

// Options configure a [Server]. Set them with the With helpers.
type Options struct {
	// Keys are the keys the stand-in accepts from the start. Empty means
	// none: every request is 401 until [Server.AddKey] or [Server.Rotate].
	Keys []string
	// Clock tells the time, for the grace periods of [Server.Rotate] and
	// [Server.RevokeAfter]. Nil means [time.Now].
	Clock func() time.Time
	// Models are the model IDs GET /v1/models lists and POST /v1/embeddings
	// accepts. Empty means [DefaultModel] only.
	Models []string
	// Dimensions is the length of the embeddings returned when a request
	// does not ask for one ("dimensions"). Zero or less means
	// [DefaultDimensions]; more than [MaxDimensions] means MaxDimensions.
	Dimensions int
	// Organizations are what GET /v1/organizations lists, in this order.
	// Nil means [DefaultOrganizations]; an empty non-nil slice lists none.
	Organizations []Organization
	// PageSize is the number of organizations per page. Zero (or less)
	// means [DefaultPageSize].
	PageSize int
}

// Option sets a field of [Options].
type Option func(*Options)

// WithKeys adds keys to [Options.Keys], the keys accepted from the start;
// it may be given more than once.
func WithKeys(keys ...string) Option {
	return func(o *Options) { o.Keys = append(o.Keys, keys...) }
}

// WithClock sets [Options.Clock], the clock grace periods are measured
// with.
func WithClock(now func() time.Time) Option { return func(o *Options) { o.Clock = now } }

// WithModels sets [Options.Models], the models listed and accepted.
func WithModels(models ...string) Option {
	return func(o *Options) { o.Models = slices.Clone(models) }
}

// WithDimensions sets [Options.Dimensions], the default embedding length.
func WithDimensions(n int) Option { return func(o *Options) { o.Dimensions = n } }

// WithOrganizations sets [Options.Organizations], the organizations
// listed.
func WithOrganizations(orgs ...Organization) Option {
	return func(o *Options) {
		o.Organizations = append([]Organization{}, orgs...) // non-nil, even if empty
	}
}

// WithPageSize sets [Options.PageSize], the organizations per page.
func WithPageSize(n int) Option { return func(o *Options) { o.PageSize = n } }

// Server is a running stand-in. Its methods are safe for concurrent use,
// also while it serves requests.
type Server struct {
	opts Options
	srv  *httptest.Server
	once sync.Once

	mu       sync.Mutex
	keys     map[[32]byte]*keyState
	throttle throttle
	stats    Stats
}

// New starts a stand-in for the test t, configured by opts, and closes it
// when t ends (with t.Cleanup). It fails t if the stand-in cannot start.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Start(opts...)
	if err != nil {
		t.Fatalf("standin: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Start starts a stand-in configured by opts on a free loopback port. The
// caller must [Server.Close] it. It fails only if no loopback port can be
// had.
func Start(opts ...Option) (*Server, error) {
	var o Options
	for _, opt := range opts {
		opt(&o)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if len(o.Models) == 0 {
		o.Models = []string{DefaultModel}
	}
	if o.Dimensions <= 0 {
		o.Dimensions = DefaultDimensions
	}
	o.Dimensions = min(o.Dimensions, MaxDimensions)
	if o.Organizations == nil {
		o.Organizations = slices.Clone(DefaultOrganizations)
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	l, err := listenLoopback()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, keys: make(map[[32]byte]*keyState), stats: newStats()}
	for _, k := range o.Keys {
		s.AddKey(k)
	}
	s.srv = httptest.NewUnstartedServer(s.routes())
	_ = s.srv.Listener.Close() // replaced: httptest may honour -httptest.serve
	s.srv.Listener = l
	s.srv.Start()
	return s, nil
}

// listenLoopback listens on a free port of 127.0.0.1, or of ::1 on a host
// without IPv4 loopback; never on another interface.
func listenLoopback() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err == nil {
		return l, nil
	}
	l, err6 := net.Listen("tcp", "[::1]:0")
	if err6 == nil {
		return l, nil
	}
	return nil, fmt.Errorf("standin: no loopback port: %w", err)
}

// BaseURL returns the APIs' base URL, "http://127.0.0.1:<port>/v1": the
// stand-in's equivalent of [keyprovider.Tessera].BaseURL and
// [keyprovider.Tesseral].BaseURL.
func (s *Server) BaseURL() string { return s.srv.URL + "/v1" }

// Service returns svc with its BaseURL pointed at the stand-in, so that a
// client built for the returned Service sends its key to the stand-in and
// nowhere else. Its BaseURLEnvVar is cleared: a TESSERA_BASE_URL in the
// test's environment cannot send [keyprovider.Service.ResolveBaseURL]
// elsewhere.
func (s *Server) Service(svc keyprovider.Service) keyprovider.Service {
	svc.BaseURL, svc.BaseURLEnvVar = s.BaseURL(), ""
	return svc
}

// Client returns an [http.Client] without authentication that reaches the
// stand-in, for tests that set the Authorization header themselves.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close shuts the stand-in down: it stops listening, closes idle
// connections and waits for the requests in flight. A second Close does
// nothing; both return nil.
func (s *Server) Close() error {
	s.once.Do(s.srv.Close)
	return nil
}

// NewKey returns a fresh random key for svc: its KeyPrefix followed by 32
// random letters and digits, a key svc.Validate accepts.
func NewKey(svc keyprovider.Service) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return svc.KeyPrefix + string(b)
}

// Fingerprint returns the fingerprint [Stats] uses for key: the same as
// keyprovider.NewKey(key, "").Fingerprint(), such as
// "sk-tessera-…3f9a1c2b7d4e".
func Fingerprint(key string) string { return keyprovider.NewKey(key, "").Fingerprint() }
