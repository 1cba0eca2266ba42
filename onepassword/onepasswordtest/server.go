// Package onepasswordtest helps test code that reads keys from 1Password: an
// emulator of the 1Password Connect API that real Connect clients (the Go
// connect-sdk-go, the JavaScript @1password/connect) talk to over HTTP
// ([Server]), and a fake of the SDK's Secrets API ([Secrets]).
//
// The emulator serves the endpoints a reader of secrets uses, as Connect
// serves them:
//
//	GET /v1/vaults[?filter=name eq "NAME"]
//	GET /v1/vaults/{vaultUUID}
//	GET /v1/vaults/{vaultUUID}/items[?filter=title eq "TITLE" | title co "PART"]
//	GET /v1/vaults/{vaultUUID}/items/{itemUUID}
//	GET /heartbeat, GET /health (no token needed)
//
// A trailing "/" is accepted ("/v1/vaults/", which the JavaScript SDK
// sends). Every /v1 request must carry "Authorization: Bearer <token>" with
// the server's token: 401 otherwise, whatever the path, as the token is
// checked before routing. A vault or item ID that is not 26 lower-case
// letters and digits is 400 ("Invalid Vault UUID"), an unknown one 404.
// Errors are Connect's JSON {"status":N,"message":...}. Computed fields are
// filled as Connect fills them: createdAt/updatedAt (updatedAt moves on every
// change), a vault's item count and attribute and content versions, an
// item's version, and the current code ("totp") of every OTP field, from
// the field's otpauth:// URI or base32 secret on the server's clock.
//
// Vaults can be hidden from the token (403), the token revoked (401), and
// faults injected (any status, or a request that hangs until the client
// gives up); requests are counted by route. The same is reachable over HTTP
// under [ControlPath], for tests not written in Go.
package onepasswordtest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	op "github.com/1Password/connect-sdk-go/onepassword"

	"github.com/keyprovider/keyprovider/onepassword"
)

// Routes, as counted by [Server.Requests].
const (
	RouteListVaults = "ListVaults"
	RouteGetVault   = "GetVault"
	RouteListItems  = "ListItems"
	RouteGetItem    = "GetItem"
	RouteHeartbeat  = "Heartbeat"
	RouteHealth     = "Health"
)

// Fault is a failure the server answers requests with, instead of serving
// them.
type Fault struct {
	// Status is the HTTP status to answer with (a Connect error body
	// included). Ignored when Hang is set.
	Status int `json:"status,omitempty"`
	// Hang makes the request wait, unanswered, until the client gives up
	// or the server is closed.
	Hang bool `json:"hang,omitempty"`
}

// Options configure a [Server]. The zero value is ready to use.
type Options struct {
	// Addr is the address to listen on ("127.0.0.1:8080"). Zero means a
	// free port on 127.0.0.1.
	Addr string
	// Token is the bearer token the server accepts. Zero means a random
	// one.
	Token string
	// Clock is the server's clock, for createdAt/updatedAt and OTP codes.
	// Nil means [time.Now].
	Clock func() time.Time
}

// Option changes [Options].
type Option func(*Options)

// WithAddr sets [Options.Addr].
func WithAddr(addr string) Option { return func(o *Options) { o.Addr = addr } }

// WithToken sets [Options.Token].
func WithToken(token string) Option { return func(o *Options) { o.Token = token } }

// WithClock sets [Options.Clock].
func WithClock(now func() time.Time) Option { return func(o *Options) { o.Clock = now } }

// Server is an emulated Connect server. Its methods are safe for concurrent
// use, and change what the next request sees.
type Server struct {
	// URL is the server's base URL: OP_CONNECT_HOST.
	URL string
	// Token is the bearer token the server accepts: OP_CONNECT_TOKEN.
	Token string

	srv    *httptest.Server
	closed chan struct{}
	clock  func() time.Time

	mu       sync.Mutex
	vaults   []*vault
	denied   map[string]bool
	revoked  bool
	faults   []Fault // consumed one per request, first to last
	sticky   *Fault  // answered to every request once faults run out
	requests map[string]int
}

type vault struct {
	v     op.Vault
	items []*op.Item
}

// NewServer starts a server with no vaults, a random token unless
// [WithToken] gives one, on a free loopback port unless [WithAddr] chooses
// one; t's cleanup closes it, and an address it cannot listen on fails t.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a server as [New] does; it panics when it cannot listen, as
// [httptest.NewServer] does. The caller closes it.
func Start(opts ...Option) *Server {
	s, err := New(opts...)
	if err != nil {
		panic(err)
	}
	return s
}

// New starts a server with no vaults. The error is the listener's (an
// address in use). The caller closes it.
func New(opts ...Option) (*Server, error) {
	var o Options
	for _, fn := range opts {
		fn(&o)
	}
	if o.Token == "" {
		o.Token = "connect-token-" + NewID()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	s := &Server{
		Token:    o.Token,
		closed:   make(chan struct{}),
		clock:    o.Clock,
		denied:   map[string]bool{},
		requests: map[string]int{},
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if o.Addr != "" {
		l, err := net.Listen("tcp", o.Addr)
		if err != nil {
			s.srv.Close()
			return nil, fmt.Errorf("onepasswordtest: listen on %s: %w", o.Addr, err)
		}
		_ = s.srv.Listener.Close()
		s.srv.Listener = l
	}
	s.srv.Start()
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the server, releasing hanging requests first. It may be called
// more than once.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closed:
		s.mu.Unlock()
		return
	default:
		close(s.closed)
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Client returns a real connect-sdk-go client of the server, made by
// [onepassword.NewConnectClient], which knows the server's token.
func (s *Server) Client() *onepassword.ConnectClient {
	c, err := onepassword.NewConnectClient(s.URL, s.Token)
	if err != nil {
		panic(err) // the URL and token are the server's own
	}
	return c
}

// NewID returns a random ID shaped like 1Password's: 26 lower-case letters and
// digits.
func NewID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 26)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// route is one endpoint: a method, a path pattern whose groups are IDs,
// and what serves it (under s.mu, after the token check).
type route struct {
	name    string
	method  string
	pattern *regexp.Regexp
	serve   func(s *Server, w http.ResponseWriter, r *http.Request, ids []string)
}

// itemPath is the path of one item, read and written.
var itemPath = regexp.MustCompile(`^/v1/vaults/([^/]+)/items/([^/]+)$`)

// routes is the one place the /v1 endpoints are registered: the reads, and
// the item writes of update.go, so that faults, the token check, revocation
// and the ID checks apply to writes as to reads.
var routes = []route{
	{RouteListVaults, http.MethodGet, regexp.MustCompile(`^/v1/vaults$`), (*Server).listVaults},
	{RouteGetVault, http.MethodGet, regexp.MustCompile(`^/v1/vaults/([^/]+)$`), (*Server).getVault},
	{RouteListItems, http.MethodGet, regexp.MustCompile(`^/v1/vaults/([^/]+)/items$`), (*Server).listItems},
	{RouteGetItem, http.MethodGet, itemPath, (*Server).getItem},
	{RouteUpdateItem, http.MethodPut, itemPath, (*Server).updateItem},
	{RoutePatchItem, http.MethodPatch, itemPath, (*Server).updateItem},
}

// match finds the route of a request. found is false when no pattern
// matches the path; a matching pattern without the request's method gives
// found true and a nil route.
func match(method, path string) (rt *route, ids []string, found bool) {
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/") // Connect serves /v1/vaults/ as /v1/vaults
	}
	for i := range routes {
		m := routes[i].pattern.FindStringSubmatch(path)
		if m == nil {
			continue
		}
		found = true
		if routes[i].method == method {
			return &routes[i], m[1:], true
		}
	}
	return nil, nil, found
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, ControlPath):
		s.serveControl(w, r)
		return
	case p == "/heartbeat" || p == "/health":
		s.serveHealth(w, r)
		return
	}
	rt, ids, found := match(r.Method, r.URL.Path)
	if s.takeFault(w, r, rt) {
		return
	}
	// The token is checked before routing: Connect answers 401 to a bad
	// token on any path.
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+s.Token || s.revoked {
		writeError(w, http.StatusUnauthorized, "Invalid token signature")
		return
	}
	switch {
	case !found:
		writeError(w, http.StatusNotFound, "Invalid request path")
	case rt == nil:
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed")
	// A malformed ID is 400, not 404: what real Connect servers answer
	// ({"status":400,"message":"Invalid Vault UUID"} in
	// 1Password/connect-sdk-js#29 and external-secrets#1202, "Invalid Item
	// UUID" in 1Password/connect#45); the API reference lists only 404.
	case len(ids) > 0 && !validID(ids[0]):
		writeError(w, http.StatusBadRequest, "Invalid Vault UUID")
	case len(ids) > 1 && !validID(ids[1]):
		writeError(w, http.StatusBadRequest, "Invalid Item UUID")
	default:
		rt.serve(s, w, r, ids)
	}
}

// takeFault counts the request and answers it with the next fault, if any;
// it reports whether it did.
func (s *Server) takeFault(w http.ResponseWriter, r *http.Request, rt *route) bool {
	s.mu.Lock()
	if rt != nil {
		s.requests[rt.name]++
	}
	var fault *Fault
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		fault = &f
	} else if s.sticky != nil {
		f := *s.sticky
		fault = &f
	}
	s.mu.Unlock()
	switch {
	case fault == nil:
		return false
	case fault.Hang:
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
	default:
		writeError(w, fault.Status, http.StatusText(fault.Status))
	}
	return true
}

var reID = regexp.MustCompile(`^[a-z0-9]{26}$`)

// validID reports whether id is shaped like a 1Password UUID, as Connect
// (and the JavaScript SDK's isValidId) requires.
func validID(id string) bool { return reID.MatchString(id) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "message": msg})
}
