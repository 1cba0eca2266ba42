package awssmtest

import (
	"cmp"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// ControlPath is the prefix of the emulator's control endpoints, which
// reach fault injection and rotation over HTTP for tests that are not
// written in Go. No AWS client sends a request there (Secrets Manager's
// protocol is POST / with X-Amz-Target), and the control endpoints need
// no signature:
//
//	POST /_emulator/fail    {"op":"GetSecretValue","secretId":"","fault":"throttle","count":2}
//	POST /_emulator/clear   removes every fault and un-revokes the credential
//	POST /_emulator/revoke  {"revoked":true}: every request UnrecognizedClientException
//	POST /_emulator/rotate  a PutSecretValue input: a new version, AWSCURRENT unless VersionStages say otherwise
//	POST /_emulator/stage   an UpdateSecretVersionStage input: move a staging label
//	GET  /_emulator/counts  requests received per operation
//
// fault is one of throttle, internal, unavailable, access-denied,
// decryption, drop or hang, or give "code", "message" and "status" for any
// AWS error; count is how many requests fail (0 means 1, negative means
// every one until clear).
const ControlPath = "/_emulator/"

// faultNames are the faults the control endpoint knows by name.
var faultNames = map[string]Fault{
	"throttle":      Throttling,
	"internal":      InternalServiceError,
	"unavailable":   ServiceUnavailable,
	"access-denied": AccessDenied,
	"decryption":    DecryptionFailure,
	"drop":          DropConnection,
	"hang":          Hang,
}

type controlFault struct {
	Op       string `json:"op"`
	SecretID string `json:"secretId"`
	Fault    string `json:"fault"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Status   int    `json:"status"`
	Count    int    `json:"count"`
}

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		controlError(w, http.StatusBadRequest, "the request body could not be read")
		return
	}
	cmd := strings.TrimPrefix(r.URL.Path, ControlPath)
	if cmd == "counts" && r.Method == http.MethodGet {
		controlJSON(w, http.StatusOK, s.Counts())
		return
	}
	if r.Method != http.MethodPost {
		controlError(w, http.StatusMethodNotAllowed, "control endpoints take POST (GET for counts)")
		return
	}
	switch cmd {
	case "fail":
		s.controlFail(w, body)
	case "clear":
		s.ClearFaults()
		s.Revoke(false)
		controlJSON(w, http.StatusOK, map[string]bool{"ok": true})
	case "revoke":
		var in struct {
			Revoked *bool `json:"revoked"`
		}
		if json.Unmarshal(body, &in) != nil || in.Revoked == nil {
			controlError(w, http.StatusBadRequest, `body must be {"revoked":true|false}`)
			return
		}
		s.Revoke(*in.Revoked)
		controlJSON(w, http.StatusOK, map[string]bool{"revoked": *in.Revoked})
	case "rotate":
		s.controlOp(w, (*Server).putSecretValue, body)
	case "stage":
		s.controlOp(w, (*Server).updateSecretVersionStage, body)
	default:
		controlError(w, http.StatusNotFound, "unknown control endpoint "+r.URL.Path)
	}
}

func (s *Server) controlFail(w http.ResponseWriter, body []byte) {
	var in controlFault
	if err := json.Unmarshal(body, &in); err != nil {
		controlError(w, http.StatusBadRequest, "the body is not a JSON fault")
		return
	}
	f, ok := faultNames[in.Fault]
	switch {
	case in.Fault == "" && in.Code != "":
		f = Fault{Code: in.Code, Message: in.Message, Status: in.Status}
	case !ok:
		controlError(w, http.StatusBadRequest, "unknown fault "+in.Fault)
		return
	}
	if in.Op != "" && operations[in.Op] == nil {
		controlError(w, http.StatusBadRequest, "unknown operation "+in.Op)
		return
	}
	s.FailNext(Match{Op: in.Op, SecretID: in.SecretID}, f, cmp.Or(in.Count, 1))
	controlJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// controlOp runs an operation's handler on body, unsigned, as the control
// endpoints rotate and stage do, and answers as the operation would.
func (s *Server) controlOp(w http.ResponseWriter, h handler, body []byte) {
	s.mu.Lock()
	out, aerr := h(s, body, s.opts.Clock())
	s.mu.Unlock()
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func controlJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func controlError(w http.ResponseWriter, status int, msg string) {
	controlJSON(w, status, map[string]string{"error": msg})
}
