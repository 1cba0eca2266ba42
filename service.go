package keyprovider

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/keyprovider/keyprovider/internal/envread"
)

// Service describes an API whose keys this module handles: where its key is
// conventionally found, what the key looks like, and where it is sent.
type Service struct {
	// Name is a short lower-case name, as used on the command line: "tessera".
	Name string
	// EnvVar is the conventional environment variable holding the key (or a
	// reference to it): "TESSERA_API_KEY".
	EnvVar string
	// KeyPrefix is the prefix every key of the service starts with:
	// "sk-tessera-". Empty means keys are not checked for a prefix.
	KeyPrefix string
	// BaseURL is the API's base URL: "https://api.tesseraai.cloud/v1". Its
	// host ([Service.Host]) is the host to allow a [Transport] built for
	// the service to send the key to, with [WithAllowedHosts].
	// [Service.ResolveBaseURL] checks it, or replaces it by BaseURLEnvVar's.
	BaseURL string
	// BaseURLEnvVar is the environment variable that overrides BaseURL for a
	// deployment, as OPENAI_BASE_URL does for the OpenAI SDKs:
	// "TESSERA_BASE_URL" (a proxy such as keyprov proxy, a stand-in, a
	// regional endpoint). Only [Service.ResolveBaseURL] reads it. Empty
	// means BaseURL is never taken from the environment.
	BaseURLEnvVar string
}

// The services this module knows out of the box.
var (
	// Tesseral is the Tesseral Backend API: keys "tesseral_secret_key_…" in
	// TESSERAL_API_KEY; TESSERAL_BASE_URL overrides its base URL.
	Tesseral = Service{
		Name:          "tesseral",
		EnvVar:        "TESSERAL_API_KEY",
		KeyPrefix:     "tesseral_secret_key_",
		BaseURL:       "https://api.tesseral.com/v1",
		BaseURLEnvVar: "TESSERAL_BASE_URL",
	}

	// Tessera is Tessera's OpenAI-compatible embeddings API: keys
	// "sk-tessera-…" in TESSERA_API_KEY; TESSERA_BASE_URL overrides its
	// base URL.
	Tessera = Service{
		Name:          "tessera",
		EnvVar:        "TESSERA_API_KEY",
		KeyPrefix:     "sk-tessera-",
		BaseURL:       "https://api.tesseraai.cloud/v1",
		BaseURLEnvVar: "TESSERA_BASE_URL",
	}
)

// KnownServices returns the services this module knows: [Tesseral] and
// [Tessera]. Fingerprints show the key prefix of these services.
func KnownServices() []Service { return []Service{Tesseral, Tessera} }

// MaxKeyLen is the longest key [Service.Validate] accepts, in bytes. Real API
// keys are well under 200 bytes; the bound stops a whole file or a JSON
// document stored by mistake from going out as a header.
const MaxKeyLen = 1024

// validationError tells why [Service.Validate] rejected a value. It wraps
// [ErrInvalidKey] and never holds the value itself.
type validationError struct {
	// Service is the name of the service the value was checked for; may be
	// empty.
	Service string
	// Reason says what is wrong, in words safe to log.
	Reason string
}

// Error implements error.
func (e *validationError) Error() string {
	if e.Service == "" {
		return "invalid key: " + e.Reason
	}
	return "invalid " + e.Service + " key: " + e.Reason
}

// Unwrap returns [ErrInvalidKey].
func (e *validationError) Unwrap() error { return ErrInvalidKey }

// Validate checks that value is a usable key for the service, exactly as
// given: it does not trim (providers trim before they validate). It rejects
// an empty value, a value longer than [MaxKeyLen], a value without the
// service's KeyPrefix or with nothing after it, and any byte that is not
// printable ASCII (CR, LF, NUL and other control bytes, spaces, DEL, non-ASCII
// bytes), since each of them could break or smuggle an HTTP header. The zero
// Service applies every check but the prefix.
//
// The error wraps [ErrInvalidKey] (test with [errors.Is]); it describes
// the problem without quoting the value.
func (s Service) Validate(value string) error {
	bad := func(format string, args ...any) error {
		return &validationError{Service: s.Name, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case value == "":
		return bad("empty")
	case len(value) > MaxKeyLen:
		return bad("%d bytes long, more than the %d allowed", len(value), MaxKeyLen)
	}
	if strings.HasPrefix(value, "\ufeff") {
		// Notepad and some other editors save one at the start of a file.
		return bad("starts with a UTF-8 byte order mark")
	}
	for i := 0; i < len(value); i++ {
		switch c := value[i]; {
		case c == ' ':
			return bad("space at byte %d", i)
		case c < 0x20 || c == 0x7f:
			return bad("control character %#02x at byte %d", c, i)
		case c > 0x7e:
			return bad("non-ASCII byte at byte %d", i)
		}
	}
	if s.KeyPrefix != "" {
		if !strings.HasPrefix(value, s.KeyPrefix) {
			for _, other := range KnownServices() {
				if other.KeyPrefix != "" && other.KeyPrefix != s.KeyPrefix && strings.HasPrefix(value, other.KeyPrefix) {
					return bad("does not start with %q (it looks like a %s key)", s.KeyPrefix, other.Name)
				}
			}
			return bad("does not start with %q", s.KeyPrefix)
		}
		if len(value) == len(s.KeyPrefix) {
			return bad("nothing after the prefix %q", s.KeyPrefix)
		}
	}
	return nil
}

// ParseKey turns raw, as read from a backend, into a [Key]: it trims
// surrounding white space (a secret stored with a trailing newline is the
// commonest mistake), then checks the result with [Service.Validate]. The
// zero Service applies the checks that keep a header safe, without a prefix.
func (s Service) ParseKey(raw, version string) (Key, error) {
	value := strings.TrimSpace(raw)
	if err := s.Validate(value); err != nil {
		return Key{}, err
	}
	return NewKey(value, version), nil
}

// Host returns the host (with port, if BaseURL has one) of the service's
// BaseURL, or "" if BaseURL is empty or does not parse.
func (s Service) Host() string {
	if s.BaseURL == "" {
		return ""
	}
	u, err := url.Parse(s.BaseURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// ResolveBaseURL returns s with the base URL its key is to be sent to: the
// value of the variable BaseURLEnvVar ("TESSERA_BASE_URL") when that is set
// and not blank (trimmed), else s.BaseURL as it is. The variable is read
// through [WithLookupEnv] when given, else from the process environment;
// a Service whose BaseURLEnvVar is empty never reads the environment.
//
// The result is checked in every case, so that a key never crosses a
// network in clear nor goes where the URL does not say: it must be an
// absolute URL with a host, without credentials (user info), query or
// fragment, and HTTPS, or plain HTTP to a loopback host only ("localhost",
// 127.0.0.0/8, ::1), by the loopback rule the [Transport] applies to each
// request's scheme and host. The scheme is lower-cased; the rest is kept
// as written.
//
// An unusable or empty base URL is an error that wraps [ErrHostNotAllowed]
// (test with [errors.Is]), returned with the zero Service. It names where
// the URL came from (the variable, or "tessera's base URL" for the field)
// and is safe to log: it never quotes credentials, a query or a fragment,
// nor a value that does not parse.
func (s Service) ResolveBaseURL(opts ...EnvOption) (Service, error) {
	from, raw := s.Name+"'s base URL", s.BaseURL
	if s.Name == "" {
		from = "the service's base URL"
	}
	if s.BaseURLEnvVar != "" {
		if v, err := envread.Var(envOptions(opts).LookupEnv, s.BaseURLEnvVar); err == nil {
			from, raw = s.BaseURLEnvVar, v
		}
	}
	if raw == "" {
		reason := "empty: there is nowhere to send the key"
		if s.BaseURLEnvVar != "" {
			reason += " (" + s.BaseURLEnvVar + " is not set either)"
		}
		return Service{}, &baseURLError{from: from, reason: reason}
	}
	u, err := checkBaseURL(raw)
	if err != nil {
		err.from = from
		return Service{}, err
	}
	// url.Parse lower-cased u.Scheme, and raw starts with it.
	s.BaseURL = u.Scheme + raw[len(u.Scheme):]
	return s, nil
}

// checkBaseURL parses raw as a base URL a key may be sent to, by the rule
// of [Service.ResolveBaseURL]; the error's from is left to the caller.
func checkBaseURL(raw string) (*url.URL, *baseURLError) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Scheme == "" || u.Opaque != "" || u.Hostname() == "":
		// Not err's text: a *url.Error quotes the whole value.
		return nil, &baseURLError{reason: "not an absolute URL with a host"}
	case u.User != nil:
		return nil, &baseURLError{reason: "a URL with credentials in it is refused (they are not shown)"}
	case strings.ContainsAny(raw, "?#"):
		return nil, &baseURLError{reason: "a base URL takes no query or fragment"}
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return nil, &baseURLError{reason: "the key goes only over HTTPS, or plain HTTP to a loopback host (got " +
			scrub(u.Scheme+"://"+u.Host) + ")"}
	}
	return u, nil
}

// baseURLError tells why [Service.ResolveBaseURL] refused a base URL. It
// wraps [ErrHostNotAllowed] and holds no user info, query or fragment.
type baseURLError struct {
	// from names where the URL came from: a variable, or the field.
	from string
	// reason says what is wrong, in words safe to log.
	reason string
}

// Error implements error.
func (e *baseURLError) Error() string { return "keyprovider: " + e.from + ": " + e.reason }

// Unwrap returns [ErrHostNotAllowed].
func (e *baseURLError) Unwrap() error { return ErrHostNotAllowed }
