package onepasswordtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	op "github.com/1Password/connect-sdk-go/onepassword"
)

// Routes of item updates, as counted by [Server.Requests].
const (
	RouteUpdateItem = "UpdateItem" // PUT /v1/vaults/{vaultUUID}/items/{itemUUID}
	RoutePatchItem  = "PatchItem"  // PATCH /v1/vaults/{vaultUUID}/items/{itemUUID}
)

// maxUpdateBody bounds the body of an update.
const maxUpdateBody = 1 << 20

// serveUpdate serves PUT and PATCH on an item, as Connect does, and reports
// whether r was one:
//
//   - PUT replaces the item with the body (a whole item, as connect-sdk-go's
//     UpdateItem sends it). A body whose "version" is set and is not the
//     stored item's version is answered 409 Conflict, nothing changed: the
//     writer read a version another writer has since replaced. Success
//     answers the stored item, one version up.
//   - PATCH applies a JSON Patch (RFC 6902) of "add", "replace" and
//     "remove" operations on "/title", "/fields" (add a field),
//     "/fields/{fieldID}" and "/fields/{fieldID}/value", all or nothing,
//     one version up. Connect's PATCH takes no version: it never conflicts.
//
// Faults, the token, revocation and denied vaults apply as to reads.
func (s *Server) serveUpdate(w http.ResponseWriter, r *http.Request) bool {
	m := reItem.FindStringSubmatch(r.URL.Path)
	if m == nil || (r.Method != http.MethodPut && r.Method != http.MethodPatch) {
		return false
	}
	route := RouteUpdateItem
	if r.Method == http.MethodPatch {
		route = RoutePatchItem
	}
	if s.refuse(w, r, route) {
		return true
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxUpdateBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Unreadable request body")
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.access(w, m[1])
	if v == nil {
		return true
	}
	for i, it := range v.items {
		if it.ID != m[2] {
			continue
		}
		next, status, msg := update(it, r.Method, body)
		if status != http.StatusOK {
			writeError(w, status, msg)
			return true
		}
		next.ID, next.Vault, next.Version = it.ID, op.ItemVault{ID: v.v.ID}, it.Version+1
		v.items[i] = copyItem(next)
		writeJSON(w, v.items[i])
		return true
	}
	writeError(w, http.StatusNotFound, "Invalid Item UUID")
	return true
}

// refuse counts the request, and answers it with a fault or a 401 when it
// is to be refused.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, route string) bool {
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
	revoked := s.revoked
	s.mu.Unlock()
	switch {
	case fault != nil && fault.Hang:
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		return true
	case fault != nil:
		writeError(w, fault.Status, http.StatusText(fault.Status))
		return true
	case r.Header.Get("Authorization") != "Bearer "+s.Token || revoked:
		writeError(w, http.StatusUnauthorized, "Invalid token signature")
		return true
	}
	return false
}

// update is stored updated by a PUT or PATCH body, or the error status and
// message to answer.
func update(stored *op.Item, method string, body []byte) (*op.Item, int, string) {
	if method == http.MethodPut {
		var in op.Item
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, http.StatusBadRequest, "Invalid item body"
		}
		if in.ID != "" && in.ID != stored.ID {
			return nil, http.StatusBadRequest, "The item's ID does not match the request path"
		}
		if in.Version != 0 && in.Version != stored.Version {
			return nil, http.StatusConflict, fmt.Sprintf("Unable to update item: version %d is not the item's current version (it was changed since it was read)", in.Version)
		}
		return &in, http.StatusOK, ""
	}
	var ops []patchOp
	if err := json.Unmarshal(body, &ops); err != nil {
		return nil, http.StatusBadRequest, "Invalid JSON Patch body"
	}
	next := copyItem(stored)
	for _, o := range ops {
		if msg := o.apply(next); msg != "" {
			return nil, http.StatusBadRequest, msg
		}
	}
	return next, http.StatusOK, ""
}

// patchOp is one operation of a JSON Patch.
type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

func (o patchOp) apply(it *op.Item) string {
	parts := strings.Split(strings.TrimPrefix(o.Path, "/"), "/")
	switch {
	case o.Path == "/title" && (o.Op == "replace" || o.Op == "add"):
		if json.Unmarshal(o.Value, &it.Title) != nil {
			return "Invalid value for /title"
		}
	case o.Path == "/fields" && o.Op == "add":
		var f op.ItemField
		if json.Unmarshal(o.Value, &f) != nil {
			return "Invalid field"
		}
		if f.ID == "" {
			f.ID = NewID()
		}
		it.Fields = append(it.Fields, &f)
	case len(parts) >= 2 && parts[0] == "fields":
		return o.applyField(it, parts[1], parts[2:])
	default:
		return fmt.Sprintf("Unsupported patch operation %q on %q", o.Op, o.Path)
	}
	return ""
}

func (o patchOp) applyField(it *op.Item, id string, rest []string) string {
	for i, f := range it.Fields {
		if f.ID != id {
			continue
		}
		switch {
		case len(rest) == 0 && o.Op == "remove":
			it.Fields = append(it.Fields[:i], it.Fields[i+1:]...)
		case len(rest) == 0 && o.Op == "replace":
			var nf op.ItemField
			if json.Unmarshal(o.Value, &nf) != nil {
				return "Invalid field"
			}
			nf.ID = id
			it.Fields[i] = &nf
		case len(rest) == 1 && rest[0] == "value" && (o.Op == "replace" || o.Op == "add"):
			if json.Unmarshal(o.Value, &f.Value) != nil {
				return "Invalid field value"
			}
		default:
			return fmt.Sprintf("Unsupported patch operation %q on %q", o.Op, o.Path)
		}
		return ""
	}
	return "Invalid field ID " + id
}

// serveWithUpdates is the server's handler: item updates (serveUpdate),
// then the reads (serve).
func (s *Server) serveWithUpdates(w http.ResponseWriter, r *http.Request) {
	if !s.serveUpdate(w, r) {
		s.serve(w, r)
	}
}
