package onepasswordtest

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strings"
)

// ControlPath is the prefix of the emulator's control endpoints, which
// reach fault injection and rotation over HTTP for tests that are not
// written in Go. No Connect client calls it, and it needs no token:
//
//	POST /_emulator/fail     {"status":503,"count":2} or {"hang":true}; count < 0: every request until heal
//	POST /_emulator/heal     clears the faults
//	POST /_emulator/deny     {"vault":"<id>","denied":true}
//	POST /_emulator/revoke   {"revoked":true}: every request 401
//	POST /_emulator/rotate   {"vault":"<id>","item":"<id>","field":"credential","value":"new"}
//	GET  /_emulator/requests requests received per route
const ControlPath = "/_emulator/"

type controlRequest struct {
	Fault
	Count   int    `json:"count"`
	Vault   string `json:"vault"`
	Item    string `json:"item"`
	Field   string `json:"field"`
	Value   string `json:"value"`
	Denied  *bool  `json:"denied"`
	Revoked *bool  `json:"revoked"`
}

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	cmd := strings.TrimPrefix(r.URL.Path, ControlPath)
	if cmd == "requests" && r.Method == http.MethodGet {
		s.mu.Lock()
		counts := maps.Clone(s.requests)
		s.mu.Unlock()
		writeJSON(w, counts)
		return
	}
	if r.Method != http.MethodPost {
		controlError(w, http.StatusMethodNotAllowed, "control endpoints take POST (GET for requests)")
		return
	}
	var in controlRequest
	if body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20)); err != nil || len(body) > 0 && json.Unmarshal(body, &in) != nil {
		controlError(w, http.StatusBadRequest, "the body is not a JSON object")
		return
	}
	switch cmd {
	case "fail":
		s.controlFail(w, in)
		return
	case "heal":
		s.Heal()
	case "deny":
		if in.Vault == "" || in.Denied == nil {
			controlError(w, http.StatusBadRequest, `body must be {"vault":"<id>","denied":true|false}`)
			return
		}
		s.Deny(in.Vault, *in.Denied)
	case "revoke":
		if in.Revoked == nil {
			controlError(w, http.StatusBadRequest, `body must be {"revoked":true|false}`)
			return
		}
		s.setRevoked(*in.Revoked)
	case "rotate":
		if err := s.SetField(in.Vault, in.Item, in.Field, in.Value); err != nil {
			controlError(w, http.StatusNotFound, err.Error())
			return
		}
	default:
		controlError(w, http.StatusNotFound, "unknown control endpoint "+r.URL.Path)
		return
	}
	writeJSON(w, map[string]bool{"ok": true})
}

func (s *Server) controlFail(w http.ResponseWriter, in controlRequest) {
	if !in.Hang && (in.Status < 400 || in.Status > 599) {
		controlError(w, http.StatusBadRequest, `a fault is {"status":400..599} or {"hang":true}`)
		return
	}
	switch {
	case in.Count < 0:
		s.FailAll(in.Fault)
	default:
		faults := make([]Fault, max(in.Count, 1))
		for i := range faults {
			faults[i] = in.Fault
		}
		s.FailNext(faults...)
	}
	writeJSON(w, map[string]bool{"ok": true})
}

func controlError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
