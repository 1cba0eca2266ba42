package standin

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// vendor is the API a route belongs to; it decides the shape of errors.
type vendor int

const (
	tessera vendor = iota
	tesseral
)

// The messages of the refusals, from the vendors' tables.
const (
	msgUnauthorized = "Authorization header missing or key invalid"
	msgForbidden    = "Valid key but no permission for this resource"
	msgThrottled    = "Valid key but rate limit exceeded"
)

// apiError is one error answer, before it is put in a vendor's shape.
type apiError struct {
	status  int
	code    string // Tessera's (OpenAI's) error code; "" is JSON null
	typ     string // Tessera's (OpenAI's) error type
	connect string // Tesseral's (Connect's) error code
	param   string // the request field at fault; "" is JSON null
	msg     string
}

var (
	errUnauthorized = apiError{status: http.StatusUnauthorized, code: "invalid_api_key",
		typ: "invalid_request_error", connect: "unauthenticated", msg: msgUnauthorized}
	errForbidden = apiError{status: http.StatusForbidden, code: "permission_denied",
		typ: "permission_error", connect: "permission_denied", msg: msgForbidden}
	errThrottled = apiError{status: http.StatusTooManyRequests, code: "rate_limit_exceeded",
		typ: "requests", connect: "resource_exhausted", msg: msgThrottled}
)

// badRequest is a 400 about param.
func badRequest(param, msg string) apiError {
	return apiError{status: http.StatusBadRequest, typ: "invalid_request_error",
		connect: "invalid_argument", param: param, msg: msg}
}

// routes returns the stand-in's handler.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(string(RouteEmbeddings), s.authed(RouteEmbeddings, tessera, s.embeddings))
	mux.HandleFunc(string(RouteModels), s.authed(RouteModels, tessera, s.models))
	mux.HandleFunc(string(RouteOrganizations), s.authed(RouteOrganizations, tesseral, s.organizations))
	return mux
}

// handler serves one route once the request is let through.
type handler func(w http.ResponseWriter, r *http.Request, v vendor)

// authed wraps h with the counting and the checks, in the order 401, 403,
// 429.
func (s *Server) authed(route Route, v vendor, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		refusal, retryAfter := s.admit(route, r.Header.Values("Authorization"))
		switch refusal.status {
		case 0:
			h(w, r, v)
			return
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer realm="standin"`)
		case http.StatusTooManyRequests:
			secs := (retryAfter + time.Second - 1) / time.Second
			w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
		}
		s.fail(w, v, refusal)
	}
}

// admit counts a request to route with the given Authorization header
// values and decides whether it is refused: it returns the refusal (zero
// status if none) and, for a 429, the wait to advertise.
func (s *Server) admit(route Route, auth []string) (apiError, time.Duration) {
	token, ok := "", false
	if len(auth) == 1 {
		token, ok = strings.CutPrefix(auth[0], "Bearer ")
		ok = ok && token != ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests++
	s.stats.ByRoute[route]++
	var st *keyState
	if ok {
		st = s.lookup(token)
		fp := Fingerprint(token)
		if st != nil {
			fp = st.fp
		}
		s.stats.ByKey[fp]++
	}
	switch {
	case st == nil || !st.valid(s.opts.Clock()):
		s.stats.Rejected++
		return errUnauthorized, 0
	case st.denied(route):
		s.stats.Accepted++
		s.stats.Denied++
		return errForbidden, 0
	case s.throttle.left > 0:
		s.throttle.left--
		s.stats.Accepted++
		s.stats.Throttled++
		return errThrottled, s.throttle.after
	}
	s.stats.Accepted++
	s.stats.LastAccepted = st.fp
	return apiError{}, 0
}

// fail writes e in v's shape.
func (s *Server) fail(w http.ResponseWriter, v vendor, e apiError) {
	if v == tesseral {
		s.reply(w, e.status, map[string]string{"code": e.connect, "message": e.msg})
		return
	}
	s.reply(w, e.status, map[string]any{"error": map[string]any{
		"message": e.msg, "type": e.typ, "param": nullable(e.param), "code": nullable(e.code),
	}})
}

// nullable is s, or JSON null for "".
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// reply writes v as JSON with status, and counts the status.
func (s *Server) reply(w http.ResponseWriter, status int, v any) {
	s.mu.Lock()
	s.stats.ByStatus[status]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
