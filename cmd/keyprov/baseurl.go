package main

import (
	"net/url"
	"strings"

	"github.com/keyprovider/keyprovider"
)

// serviceBaseURL is where svc's key goes, for the proxy (--upstream) and
// for rotate's verification (--verify-url): the flag's value when it is not
// blank, else what [keyprovider.Service.ResolveBaseURL] resolves from lookup
// (the process environment when nil): <SERVICE>_BASE_URL (TESSERA_BASE_URL,
// as OPENAI_BASE_URL for the OpenAI SDKs), else the service's BaseURL.
//
// The flag is checked by the library's rule too (HTTPS, or plain HTTP to a
// loopback host; no credentials, query or fragment): it is read as if it
// were the service's variable, so that the error names flagName.
func serviceBaseURL(svc keyprovider.Service, flagName, flag string, lookup lookupFunc) (*url.URL, error) {
	if strings.TrimSpace(flag) != "" {
		svc.BaseURLEnvVar = flagName
		lookup = func(name string) (string, bool) { return flag, name == flagName }
	}
	resolved, err := svc.ResolveBaseURL(keyprovider.WithLookupEnv(lookup))
	if err != nil {
		return nil, err
	}
	return url.Parse(resolved.BaseURL) // parsed once already: cannot fail
}
