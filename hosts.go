package keyprovider

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
)

// ErrHostNotAllowed is matched (with [errors.Is]) by the error of a request
// the [Transport] refused to send because its host may not receive the key:
// the Transport allows no host at all, or [Options.FailDisallowedHost] is
// set. The error's message names the scheme, the host and the reason, never
// the key.
var ErrHostNotAllowed = errors.New("host may not receive the key")

// hostError is the error of a request refused by the host rules.
type hostError struct {
	scheme, host, reason string
}

func (e *hostError) Error() string {
	return "keyprovider: transport: key withheld from " + e.scheme + "://" + e.host + ": " + e.reason
}

func (e *hostError) Unwrap() error { return ErrHostNotAllowed }

// Reasons a key is withheld; constants so that deciding costs nothing.
const (
	reasonNoHosts  = "the transport allows no host (use WithAllowedHosts or WithAllowAnyHost)"
	reasonNotTLS   = "not HTTPS and not a loopback host"
	reasonNotAllow = "host not in the allowed hosts"
)

type hostPort struct{ host, port string }

// splitHostPort splits "host:port", "[v6]:port", "[v6]", "v6" and "host"
// without allocating; a missing port is "".
func splitHostPort(s string) (host, port string) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return s, ""
		}
		host, rest := s[1:end], s[end+1:]
		if strings.HasPrefix(rest, ":") {
			return host, rest[1:]
		}
		return host, ""
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.IndexByte(s, ':') == i {
		return s[:i], s[i+1:]
	}
	return s, "" // a bare name, or a bare IPv6 address
}

// withhold returns why the key may not go to u, or "" if it may.
func (t *Transport) withhold(u *url.URL) string {
	if len(t.allow) == 0 && !t.any {
		return reasonNoHosts
	}
	host, port := u.Hostname(), u.Port()
	https := strings.EqualFold(u.Scheme, "https")
	if !https && !(strings.EqualFold(u.Scheme, "http") && isLoopback(host)) {
		return reasonNotTLS
	}
	if t.any {
		return ""
	}
	def := "80"
	if https {
		def = "443"
	}
	if port == "" {
		port = def
	}
	for _, a := range t.allow {
		ap := a.port
		if ap == "" {
			ap = def
		}
		if ap == port && strings.EqualFold(a.host, host) {
			return ""
		}
	}
	return reasonNotAllow
}

// isLoopback reports whether host (without port or brackets) is
// "localhost" or a loopback IP address. Names that merely resolve to
// loopback are not trusted: resolution is not ours to check.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.EqualFold(host, "localhost.") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
