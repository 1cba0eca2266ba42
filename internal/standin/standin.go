// Package standin is a local stand-in for the Tessera embeddings API and the
// Tesseral Backend API that accepts only its current key. The quickstart, the
// examples and the keyprov tests run against it, so that they need no cloud
// account and no real key.
//
// # What it serves
//
// Under [Server.BaseURL] (".../v1"), on loopback over plain HTTP:
//
//   - POST /v1/embeddings: Tessera's OpenAI-compatible embeddings call. The
//     body is {"model": ..., "input": "text" | ["text", ...]}; the answer is
//     an OpenAI "list" of one deterministic 8-dimension embedding per input,
//     with usage counts.
//   - GET /v1/organizations: Tesseral's organization listing, answered with
//     {"organizations": [...], "nextPageToken": ""}.
//
// Every request must carry "Authorization: Bearer <current key>". Anything
// else is answered 401 with an error body in the API's own shape, as the real
// APIs answer a revoked key. [Server.Rotate] switches the current key at once:
// from then on the old key is refused, which is what a client following a
// rotation must survive.
//
// # Observing it
//
// [Server.Stats] counts accepted and refused requests and remembers the
// fingerprint of the last key accepted. The stand-in never logs or returns a
// key; it compares them in constant time.
package standin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/keyprovider/keyprovider"
)

// Organizations are the organizations GET /v1/organizations lists.
var Organizations = []Organization{
	{ID: "org_01standin0acme", DisplayName: "Acme Corp"},
	{ID: "org_01standin0globex", DisplayName: "Globex"},
	{ID: "org_01standin0initech", DisplayName: "Initech"},
}

// Organization is one organization of the Tesseral Backend API, with the
// fields the stand-in fills.
type Organization struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
}

// Dimensions is the length of the embeddings the stand-in returns.
const Dimensions = 8

// Stats tells what a [Server] has seen.
type Stats struct {
	// Accepted counts requests that carried the current key, whatever
	// their outcome after that (a malformed body still counts).
	Accepted int
	// Rejected counts requests answered 401: no key, a malformed
	// Authorization header, or a key that is not the current one.
	Rejected int
	// LastAccepted is the fingerprint of the key of the last accepted
	// request, or "" if none was accepted yet.
	LastAccepted string
}

// Server is a running stand-in. It is safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu    sync.Mutex
	key   []byte
	stats Stats
}

// Start starts a stand-in on a loopback port that accepts key. The caller
// must [Server.Close] it.
func Start(key string) *Server {
	s := &Server{key: []byte(key)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/embeddings", s.authed(s.tesseraError, s.embeddings))
	mux.HandleFunc("GET /v1/organizations", s.authed(s.tesseralError, s.organizations))
	s.srv = httptest.NewServer(mux)
	return s
}

// BaseURL returns the API's base URL, "http://127.0.0.1:<port>/v1", the
// stand-in's equivalent of [keyprovider.Tessera].BaseURL.
func (s *Server) BaseURL() string { return s.srv.URL + "/v1" }

// Service returns svc with its BaseURL pointed at the stand-in, so that a
// client built for the returned Service sends its key to the stand-in and
// nowhere else.
func (s *Server) Service(svc keyprovider.Service) keyprovider.Service {
	svc.BaseURL = s.BaseURL()
	return svc
}

// Rotate makes key the only key the stand-in accepts, from the next request
// on.
func (s *Server) Rotate(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = []byte(key)
}

// Stats returns what the stand-in has seen so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close shuts the stand-in down, waiting for requests in flight.
func (s *Server) Close() { s.srv.Close() }

// NewKey returns a fresh random key for svc: its KeyPrefix followed by 32
// random letters and digits.
func NewKey(svc keyprovider.Service) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return svc.KeyPrefix + string(b)
}

// authed wraps h with the key check; refuse writes the 401 in the API's
// shape.
func (s *Server) authed(refuse func(http.ResponseWriter, int, string), h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		accepted := ok && got != "" && subtle.ConstantTimeCompare([]byte(got), s.key) == 1
		if accepted {
			s.stats.Accepted++
			s.stats.LastAccepted = keyprovider.NewKey(got, "").Fingerprint()
		} else {
			s.stats.Rejected++
		}
		s.mu.Unlock()
		if !accepted {
			w.Header().Set("WWW-Authenticate", `Bearer realm="standin"`)
			refuse(w, http.StatusUnauthorized, "Authorization header missing or key invalid")
			return
		}
		h(w, r)
	}
}

// tesseraError writes an error the way OpenAI-compatible APIs do.
func (s *Server) tesseraError(w http.ResponseWriter, status int, msg string) {
	typ, code := "invalid_request_error", "invalid_request"
	if status == http.StatusUnauthorized {
		code = "invalid_api_key"
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"message": msg, "type": typ, "code": code, "param": nil,
	}})
}

// tesseralError writes an error the way the Tesseral Backend API does.
func (s *Server) tesseralError(w http.ResponseWriter, status int, msg string) {
	code := "invalid_argument"
	if status == http.StatusUnauthorized {
		code = "unauthenticated"
	}
	writeJSON(w, status, map[string]string{"code": code, "message": msg})
}

type embeddingRequest struct {
	Model string          `json:"model"`
	Input json.RawMessage `json:"input"`
}

type embedding struct {
	Object    string    `json:"object"`
	Index     int       `json:"index"`
	Embedding []float64 `json:"embedding"`
}

func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	var req embeddingRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		s.tesseraError(w, http.StatusBadRequest, "request body is not valid JSON")
		return
	}
	var inputs []string
	var one string
	switch {
	case json.Unmarshal(req.Input, &one) == nil:
		inputs = []string{one}
	case json.Unmarshal(req.Input, &inputs) == nil && len(inputs) > 0:
	default:
		s.tesseraError(w, http.StatusBadRequest, `"input" must be a string or a non-empty array of strings`)
		return
	}
	if req.Model == "" {
		s.tesseraError(w, http.StatusBadRequest, `"model" is required`)
		return
	}
	data := make([]embedding, len(inputs))
	tokens := 0
	for i, in := range inputs {
		data[i] = embedding{Object: "embedding", Index: i, Embedding: embed(in)}
		tokens += len(strings.Fields(in))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data":   data,
		"model":  req.Model,
		"usage":  map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	})
}

// embed returns a deterministic unit vector derived from text.
func embed(text string) []float64 {
	sum := sha256.Sum256([]byte(text))
	v := make([]float64, Dimensions)
	var norm float64
	for i := range v {
		x := float64(int16(binary.BigEndian.Uint16(sum[2*i:]))) / math.MaxInt16
		v[i] = x
		norm += x * x
	}
	norm = math.Sqrt(norm)
	for i := range v {
		if norm > 0 {
			v[i] /= norm
		}
	}
	return v
}

func (s *Server) organizations(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"organizations": Organizations,
		"nextPageToken": "",
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
