package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/keyprovider/keyprovider"
)

// serviceBaseURL is where svc's key goes, for the proxy (--upstream) and
// for rotate's verification (--verify-url): the flag's value, else
// <SERVICE>_BASE_URL (TESSERA_BASE_URL, as OPENAI_BASE_URL for the OpenAI
// SDKs) from lookup (the process environment when nil), else the service's
// BaseURL; checked by [checkBaseURL].
func serviceBaseURL(svc keyprovider.Service, flagName, flag string, lookup lookupFunc) (*url.URL, error) {
	if flag != "" {
		return checkBaseURL(flagName, flag)
	}
	if lookup == nil {
		lookup = os.LookupEnv
	}
	name := strings.ToUpper(svc.Name) + "_BASE_URL"
	if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
		return checkBaseURL(name, strings.TrimSpace(v))
	}
	return checkBaseURL(svc.Name+"'s base URL", svc.BaseURL)
}

// checkBaseURL parses raw, named from in errors, as a base URL a key may be
// sent to: absolute, without credentials, query or fragment, and HTTPS, or
// plain HTTP to a loopback host only, so a key never crosses a network in
// clear.
func checkBaseURL(from, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return nil, fmt.Errorf("%s: not an absolute URL", from)
	case u.User != nil:
		return nil, fmt.Errorf("%s: a URL with credentials in it is refused", from)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%s: a base URL takes no query or fragment", from)
	case strings.EqualFold(u.Scheme, "https"):
	case strings.EqualFold(u.Scheme, "http") && isLoopbackHost(u.Hostname()):
	default:
		return nil, fmt.Errorf("%s: the key goes only over HTTPS, or plain HTTP to a loopback host (got %s://%s)", from, u.Scheme, u.Host)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	return u, nil
}
