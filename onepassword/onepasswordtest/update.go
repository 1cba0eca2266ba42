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

// updateItem serves PUT and PATCH on an item, as Connect does (s.mu is
// held):
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
// Either way the item's updatedAt moves, and its vault's content version
// goes up, as on every change.
func (s *Server) updateItem(w http.ResponseWriter, r *http.Request, ids []string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxUpdateBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Unreadable request body")
		return
	}
	v := s.access(w, ids[0])
	if v == nil {
		return
	}
	for i, it := range v.items {
		if it.ID != ids[1] {
			continue
		}
		next, status, msg := update(it, r.Method, body)
		if status != http.StatusOK {
			writeError(w, status, msg)
			return
		}
		next.ID, next.Vault, next.Version = it.ID, op.ItemVault{ID: v.v.ID}, it.Version+1
		next.CreatedAt, next.UpdatedAt = it.CreatedAt, s.clock().UTC()
		v.items[i] = copyItem(next)
		s.changed(v)
		writeJSON(w, v.items[i])
		return
	}
	writeError(w, http.StatusNotFound, "Invalid Item UUID")
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
