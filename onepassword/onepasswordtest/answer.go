package onepasswordtest

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	op "github.com/1Password/connect-sdk-go/onepassword"
)

// filter is a parsed ?filter= parameter: attr op "value".
type filter struct {
	attr, op, value string
}

var reFilter = regexp.MustCompile(`^(\w+) (eq|co) "((?:[^"\\]|\\.)*)"$`)

// parseFilter reads the filter parameter and checks it is one of allowed
// ("name eq", "title co").
func parseFilter(r *http.Request, allowed ...string) (*filter, error) {
	f := strings.TrimSpace(r.URL.Query().Get("filter"))
	if f == "" {
		return nil, nil
	}
	m := reFilter.FindStringSubmatch(f)
	if m == nil {
		return nil, fmt.Errorf("invalid filter %q", f)
	}
	for _, a := range allowed {
		if a == m[1]+" "+m[2] {
			return &filter{attr: m[1], op: m[2], value: strings.ReplaceAll(m[3], `\"`, `"`)}, nil
		}
	}
	return nil, fmt.Errorf("invalid filter %q: the emulator supports %s", f, strings.Join(allowed, ", "))
}

// matches applies f to s: eq is exact; co (contains) ignores case, as SCIM
// filters, which Connect's follow, compare strings.
func (f *filter) matches(s string) bool {
	switch {
	case f == nil:
		return true
	case f.op == "eq":
		return s == f.value
	}
	return strings.Contains(strings.ToLower(s), strings.ToLower(f.value))
}

// vaultOut is what Connect sends for v: its item count filled.
func vaultOut(v *vault) op.Vault {
	out := v.v
	out.Items = len(v.items)
	return out
}

func (s *Server) listVaults(w http.ResponseWriter, r *http.Request, _ []string) {
	// The Connect API reference documents `name eq` for vaults, but both
	// official SDKs (connect-sdk-go GetVaultsByTitle, @1password/connect
	// listVaultsByTitle) send `title eq`, which real servers answer: both
	// are served.
	f, err := parseFilter(r, "name eq", "title eq")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	out := []op.Vault{}
	for _, v := range s.vaults {
		if !s.denied[v.v.ID] && f.matches(v.v.Name) {
			out = append(out, vaultOut(v))
		}
	}
	writeJSON(w, out)
}

func (s *Server) getVault(w http.ResponseWriter, _ *http.Request, ids []string) {
	if v := s.access(w, ids[0]); v != nil {
		writeJSON(w, vaultOut(v))
	}
}

func (s *Server) listItems(w http.ResponseWriter, r *http.Request, ids []string) {
	f, err := parseFilter(r, "title eq", "title co")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	v := s.access(w, ids[0])
	if v == nil {
		return
	}
	out := []op.Item{}
	for _, it := range v.items {
		if f.matches(it.Title) {
			sum := *it // a summary: no fields, no sections
			sum.Fields, sum.Sections = nil, nil
			out = append(out, sum)
		}
	}
	writeJSON(w, out)
}

func (s *Server) getItem(w http.ResponseWriter, _ *http.Request, ids []string) {
	v := s.access(w, ids[0])
	if v == nil {
		return
	}
	for _, it := range v.items {
		if it.ID == ids[1] {
			out := copyItem(it)
			now := s.clock()
			for _, f := range out.Fields {
				if f.Type == op.FieldTypeOTP {
					f.TOTP, _ = totp(f.Value, now)
				}
			}
			writeJSON(w, out)
			return
		}
	}
	writeError(w, http.StatusNotFound, "Invalid Item UUID")
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

// serveHealth answers /heartbeat (a "." in plain text) and /health (the
// server's name, version and dependencies), neither of which needs a
// token, as the Connect API reference documents them.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if r.URL.Path == "/heartbeat" {
		s.requests[RouteHeartbeat]++
	} else {
		s.requests[RouteHealth]++
	}
	s.mu.Unlock()
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	if r.URL.Path == "/heartbeat" {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("."))
		return
	}
	writeJSON(w, map[string]any{
		"name":    "1Password Connect API",
		"version": "1.7.3",
		"dependencies": []map[string]string{
			{"service": "sync", "status": "ACTIVE"},
			{"service": "sqlite", "status": "ACTIVE", "message": "Connected to the emulator's memory"},
		},
	})
}

// totp computes the current RFC 6238 code of an OTP field's value: an
// otpauth://totp/ URI (secret, algorithm, digits, period) or a bare base32
// secret (SHA-1, 6 digits, 30 s).
func totp(value string, now time.Time) (string, error) {
	secret, newHash, digits, period := value, sha1.New, 6, int64(30)
	if u, err := url.Parse(value); err == nil && u.Scheme == "otpauth" {
		q := u.Query()
		secret = q.Get("secret")
		switch strings.ToUpper(q.Get("algorithm")) {
		case "SHA256":
			newHash = sha256.New
		case "SHA512":
			newHash = sha512.New
		}
		if d, err := strconv.Atoi(q.Get("digits")); err == nil && d >= 6 && d <= 8 {
			digits = d
		}
		if p, err := strconv.ParseInt(q.Get("period"), 10, 64); err == nil && p > 0 {
			period = p
		}
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.TrimRight(strings.ReplaceAll(secret, " ", ""), "=")))
	if err != nil || len(key) == 0 {
		return "", fmt.Errorf("onepasswordtest: an OTP field holds no base32 secret")
	}
	return hotp(newHash, key, uint64(now.Unix()/period), digits), nil
}

func hotp(newHash func() hash.Hash, key []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(newHash, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	code := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, code%mod)
}
