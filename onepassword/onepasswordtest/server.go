// Package onepasswordtest helps test code that reads keys from 1Password: an
// emulator of the 1Password Connect API that the real connect-sdk-go client
// talks to over HTTP ([Server]), and a fake of the SDK's Secrets API
// ([Secrets]).
//
// The emulator serves the endpoints a reader of secrets uses, as Connect
// documents them:
//
//	GET /v1/vaults[?filter=title eq "NAME"]
//	GET /v1/vaults/{vaultUUID}
//	GET /v1/vaults/{vaultUUID}/items[?filter=title eq "TITLE"]
//	GET /v1/vaults/{vaultUUID}/items/{itemUUID}
//
// Every request must carry "Authorization: Bearer <token>" with the server's
// token (401 otherwise). Errors are Connect's JSON {"status":N,"message":...}.
// Vaults can be hidden from the token (403), the token revoked (401), and
// faults injected (any status, or a request that hangs until the client
// gives up); requests are counted by route.
package onepasswordtest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	op "github.com/1Password/connect-sdk-go/onepassword"

	"github.com/keyprovider/keyprovider/onepassword"
)

// Routes, as counted by [Server.Requests].
const (
	RouteListVaults = "ListVaults"
	RouteGetVault   = "GetVault"
	RouteListItems  = "ListItems"
	RouteGetItem    = "GetItem"
)

// Fault is a failure the server answers requests with, instead of serving
// them.
type Fault struct {
	// Status is the HTTP status to answer with (a Connect error body
	// included). Ignored when Hang is set.
	Status int
	// Hang makes the request wait, unanswered, until the client gives up
	// or the server is closed.
	Hang bool
}

// Server is an emulated Connect server. Its methods are safe for concurrent
// use, and change what the next request sees.
type Server struct {
	// URL is the server's base URL: OP_CONNECT_HOST.
	URL string
	// Token is the bearer token the server accepts: OP_CONNECT_TOKEN.
	Token string

	srv    *httptest.Server
	closed chan struct{}

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

// NewServer starts a server with no vaults and a random token; t's cleanup
// closes it.
func NewServer(t testing.TB) *Server {
	s := Start()
	t.Cleanup(s.Close)
	return s
}

// Start starts a server with no vaults and a random token. The caller closes
// it.
func Start() *Server {
	s := &Server{
		Token:    "connect-token-" + NewID(),
		closed:   make(chan struct{}),
		denied:   map[string]bool{},
		requests: map[string]int{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveWithUpdates)) // update.go: PUT, PATCH
	s.URL = s.srv.URL
	return s
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

// AddVault creates a vault named name and returns its ID. Names need not be
// unique.
func (s *Server) AddVault(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := &vault{v: op.Vault{ID: NewID(), Name: name, Type: op.UserCreatedVault}}
	s.vaults = append(s.vaults, v)
	return v.v.ID
}

// PutItem stores item in the vault and returns what was stored. An item
// without an ID is created (with a new ID, at version 1); one with the ID of
// an existing item replaces it, one version up. Fields and sections are
// kept as given.
func (s *Server) PutItem(vaultID string, item op.Item) (op.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vault(vaultID)
	if v == nil {
		return op.Item{}, fmt.Errorf("onepasswordtest: no vault %s", vaultID)
	}
	item.Vault = op.ItemVault{ID: vaultID}
	if item.ID == "" {
		item.ID, item.Version = NewID(), 1
		stored := copyItem(&item)
		v.items = append(v.items, stored)
		return *copyItem(stored), nil
	}
	for i, old := range v.items {
		if old.ID == item.ID {
			item.Version = old.Version + 1
			v.items[i] = copyItem(&item)
			return *copyItem(v.items[i]), nil
		}
	}
	return op.Item{}, fmt.Errorf("onepasswordtest: no item %s in vault %s", item.ID, vaultID)
}

// SetField sets the value of the item's field with the label or ID field (in
// any section), one item version up: a rotation.
func (s *Server) SetField(vaultID, itemID, field, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.item(vaultID, itemID)
	if it == nil {
		return fmt.Errorf("onepasswordtest: no item %s in vault %s", itemID, vaultID)
	}
	for _, f := range it.Fields {
		if f.ID == field || f.Label == field {
			f.Value = value
			it.Version++
			return nil
		}
	}
	return fmt.Errorf("onepasswordtest: item %s has no field %q", itemID, field)
}

// DeleteItem deletes an item.
func (s *Server) DeleteItem(vaultID, itemID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vault(vaultID)
	if v == nil {
		return fmt.Errorf("onepasswordtest: no vault %s", vaultID)
	}
	for i, it := range v.items {
		if it.ID == itemID {
			v.items = append(v.items[:i], v.items[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("onepasswordtest: no item %s in vault %s", itemID, vaultID)
}

// Deny takes the token's access to a vault away (or gives it back): the vault
// disappears from listings and its endpoints answer 403.
func (s *Server) Deny(vaultID string, denied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[vaultID] = denied
}

// RevokeToken makes every request answer 401, as for a revoked token.
func (s *Server) RevokeToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = true
}

// FailNext answers the next requests with faults, one each, in order.
func (s *Server) FailNext(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

// FailAll answers every request with f until [Server.Heal].
func (s *Server) FailAll(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sticky = &f
}

// Heal clears the faults of FailNext and FailAll.
func (s *Server) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults, s.sticky = nil, nil
}

// Requests returns how many requests of route (RouteGetItem...) the server
// received, faults and refusals included; route "" counts them all.
func (s *Server) Requests(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if route == "" {
		n := 0
		for _, c := range s.requests {
			n += c
		}
		return n
	}
	return s.requests[route]
}

var (
	reVaults = regexp.MustCompile(`^/v1/vaults$`)
	reVault  = regexp.MustCompile(`^/v1/vaults/([^/]+)$`)
	reItems  = regexp.MustCompile(`^/v1/vaults/([^/]+)/items$`)
	reItem   = regexp.MustCompile(`^/v1/vaults/([^/]+)/items/([^/]+)$`)
	reFilter = regexp.MustCompile(`^title eq "(.*)"$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	route, m := "", []string(nil)
	switch p := r.URL.Path; {
	case reVaults.MatchString(p):
		route = RouteListVaults
	case reVault.MatchString(p):
		route, m = RouteGetVault, reVault.FindStringSubmatch(p)
	case reItems.MatchString(p):
		route, m = RouteListItems, reItems.FindStringSubmatch(p)
	case reItem.MatchString(p):
		route, m = RouteGetItem, reItem.FindStringSubmatch(p)
	default:
		writeError(w, http.StatusNotFound, "Invalid request path")
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "The emulator serves reads only")
		return
	}

	s.mu.Lock()
	s.requests[route]++
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

	if fault != nil {
		if fault.Hang {
			select {
			case <-r.Context().Done():
			case <-s.closed:
			}
			return
		}
		writeError(w, fault.Status, http.StatusText(fault.Status))
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.Token {
		writeError(w, http.StatusUnauthorized, "Invalid token signature")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked {
		writeError(w, http.StatusUnauthorized, "Invalid token signature")
		return
	}
	title, hasFilter, err := filterTitle(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.answer(w, route, m, title, hasFilter)
}

// answer serves an authenticated request of route; m holds the IDs of its
// path. s.mu is held.
func (s *Server) answer(w http.ResponseWriter, route string, m []string, title string, hasFilter bool) {
	switch route {
	case RouteListVaults:
		out := []op.Vault{}
		for _, v := range s.vaults {
			if !s.denied[v.v.ID] && (!hasFilter || v.v.Name == title) {
				out = append(out, v.v)
			}
		}
		writeJSON(w, out)
	case RouteGetVault:
		if v := s.access(w, m[1]); v != nil {
			writeJSON(w, v.v)
		}
	case RouteListItems:
		if v := s.access(w, m[1]); v != nil {
			out := []op.Item{}
			for _, it := range v.items {
				if !hasFilter || it.Title == title {
					sum := *it // a summary: no fields, no sections
					sum.Fields, sum.Sections = nil, nil
					out = append(out, sum)
				}
			}
			writeJSON(w, out)
		}
	case RouteGetItem:
		if v := s.access(w, m[1]); v != nil {
			for _, it := range v.items {
				if it.ID == m[2] {
					writeJSON(w, it)
					return
				}
			}
			writeError(w, http.StatusNotFound, "Invalid Item UUID")
		}
	}
}

// access returns the vault, or answers 404 or 403 and returns nil. s.mu is
// held.
func (s *Server) access(w http.ResponseWriter, vaultID string) *vault {
	v := s.vault(vaultID)
	switch {
	case v == nil:
		writeError(w, http.StatusNotFound, "Invalid Vault UUID")
		return nil
	case s.denied[vaultID]:
		writeError(w, http.StatusForbidden, "Authorization: token does not have access to vault")
		return nil
	}
	return v
}

func (s *Server) vault(id string) *vault {
	for _, v := range s.vaults {
		if v.v.ID == id {
			return v
		}
	}
	return nil
}

func (s *Server) item(vaultID, itemID string) *op.Item {
	if v := s.vault(vaultID); v != nil {
		for _, it := range v.items {
			if it.ID == itemID {
				return it
			}
		}
	}
	return nil
}

// filterTitle reads the filter parameter; the emulator knows the one filter
// readers use, title eq "...".
func filterTitle(r *http.Request) (title string, ok bool, err error) {
	f := r.URL.Query().Get("filter")
	if f == "" {
		return "", false, nil
	}
	m := reFilter.FindStringSubmatch(strings.TrimSpace(f))
	if m == nil {
		return "", false, fmt.Errorf("invalid filter %q: the emulator supports title eq \"...\"", f)
	}
	return m[1], true, nil
}

func copyItem(it *op.Item) *op.Item {
	c := *it
	c.Sections = make([]*op.ItemSection, len(it.Sections))
	for i, s := range it.Sections {
		sc := *s
		c.Sections[i] = &sc
	}
	c.Fields = make([]*op.ItemField, len(it.Fields))
	for i, f := range it.Fields {
		fc := *f
		if f.Section != nil {
			sc := *f.Section
			fc.Section = &sc
		}
		c.Fields[i] = &fc
	}
	return &c
}

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
