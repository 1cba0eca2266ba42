package vault

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// FromEnv returns a Provider over a client it builds, and owns, from the
// environment read through [Options.LookupEnv] (os.LookupEnv when nil),
// the variables the Vault CLI reads:
//
//   - VAULT_ADDR (default https://127.0.0.1:8200), or VAULT_AGENT_ADDR,
//     which wins, as with the CLI; [Options.Addresses] wins over both.
//     VAULT_ADDR may list several addresses separated by commas, tried in
//     turn (see Options.Addresses); the Vault CLI itself takes only one.
//   - VAULT_TOKEN, VAULT_NAMESPACE (Options.Namespace wins over it).
//   - VAULT_CACERT, VAULT_CACERT_BYTES, VAULT_CAPATH, VAULT_CLIENT_CERT,
//     VAULT_CLIENT_KEY, VAULT_TLS_SERVER_NAME, VAULT_SKIP_VERIFY.
//   - VAULT_CLIENT_TIMEOUT, VAULT_MAX_RETRIES, VAULT_HEADERS,
//     VAULT_DISABLE_REDIRECTS, VAULT_PROXY_ADDR (or VAULT_HTTP_PROXY).
//
// An empty variable counts as unset. Nothing else is read: in particular,
// with an injected LookupEnv, the process's VAULT_* variables are never
// used, so a token of the process never goes to an address the injected
// environment names; nor are HTTP_PROXY and HTTPS_PROXY, which only the
// process environment (a nil LookupEnv) supplies. FromEnv does no I/O
// beyond reading the CA and client certificate files; ctx is checked only.
// A setting that cannot be parsed is an error wrapping
// keyprovider.ErrInvalidKey that names the variable, never its value.
//
// The Provider's [Provider.Close] closes the client's idle connections.
func FromEnv(ctx context.Context, path string, opts ...Option) (*Provider, error) {
	o := collect(opts)
	ref := strings.Trim(path, "/") + "#" + cmp.Or(o.Field, DefaultField)
	if err := ctx.Err(); err != nil {
		return nil, failure(ref, err)
	}
	env := envOf(o.LookupEnv)
	client, tr, err := newClient(env, o.LookupEnv == nil, o.Addresses)
	if err != nil {
		return nil, failure(ref, err, env.get(api.EnvVaultToken))
	}
	if o.Namespace == "" {
		o.Namespace = env.get(api.EnvVaultNamespace)
	}
	o.Addresses = nil // applied to the client
	p, err := newProvider(client, path, o)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	p.owned = tr
	return p, nil
}

// env reads the environment FromEnv was given.
type env func(string) (string, bool)

func envOf(lookup func(string) (string, bool)) env {
	if lookup == nil {
		return os.LookupEnv
	}
	return lookup
}

// get returns the variable's value; an empty value counts as unset.
func (e env) get(name string) string { v, _ := e(name); return v }

func (e env) bool(name string) (bool, error) {
	v := e.get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badConfig("%s is not a boolean", name)
	}
	return b, nil
}

// newClient builds the client from e alone. api.DefaultConfig and the
// client's own environment reading (VAULT_TOKEN, VAULT_NAMESPACE,
// VAULT_HEADERS in api.NewClient) look at the process environment, so the
// configuration is built here field by field and what NewClient read is
// undone.
func newClient(e env, processEnv bool, addrs []string) (*api.Client, *http.Transport, error) {
	tr, err := transport(e, processEnv)
	if err != nil {
		return nil, nil, err
	}
	if agent := e.get(api.EnvVaultAgentAddr); len(addrs) == 0 && agent != "" {
		addrs = []string{agent}
	}
	if len(addrs) == 0 {
		addrs = splitAddresses(e.get(api.EnvVaultAddress))
	}
	if len(addrs) == 0 {
		addrs = []string{api.DefaultAddress}
	}
	cfg := &api.Config{
		Address:      addrs[0],
		HttpClient:   &http.Client{Transport: tr, CheckRedirect: noRedirects},
		Timeout:      60 * time.Second,
		MinRetryWait: time.Second,
		MaxRetryWait: 1500 * time.Millisecond,
		MaxRetries:   2,
	}
	if err := clientSettings(e, cfg); err != nil { // before the failover wraps tr
		return nil, nil, err
	}
	if len(addrs) > 1 {
		fo, err := newFailover(tr, addrs)
		if err != nil {
			return nil, nil, err
		}
		cfg.HttpClient.Transport = fo
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, nil, badConfig("the Vault address (VAULT_ADDR or Options.Addresses) is not a URL")
	}
	headers := http.Header{api.RequestHeaderName: []string{"true"}}
	if err := envHeaders(e, headers); err != nil {
		return nil, nil, err
	}
	c.SetHeaders(headers) // drops what NewClient took from the process
	c.SetToken(e.get(api.EnvVaultToken))
	return c, tr, nil
}

// noRedirects leaves redirects to the Vault client, as api.DefaultConfig
// does.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// splitAddresses splits a comma-separated VAULT_ADDR.
func splitAddresses(v string) []string {
	var addrs []string
	for a := range strings.SplitSeq(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// transport is the HTTP transport of api.DefaultConfig (a pooled transport
// with HTTP/2 and TLS 1.2 at least), with the proxy set from e; HTTP_PROXY
// and HTTPS_PROXY apply only when e is the process environment.
func transport(e env, processEnv bool) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = runtime.GOMAXPROCS(0) + 1
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.Proxy = nil
	if proxy := e.get(api.EnvVaultProxyAddr); proxy != "" || e.get(api.EnvHTTPProxy) != "" {
		if proxy == "" {
			proxy = e.get(api.EnvHTTPProxy)
		}
		u, err := url.Parse(proxy)
		if err != nil {
			return nil, badConfig("%s is not a URL", api.EnvVaultProxyAddr)
		}
		tr.Proxy = http.ProxyURL(u)
	} else if processEnv {
		tr.Proxy = http.ProxyFromEnvironment
	}
	return tr, nil
}

// clientSettings applies the TLS, timeout, retry and redirect variables.
func clientSettings(e env, cfg *api.Config) error {
	insecure, err := e.bool(api.EnvVaultSkipVerify)
	if err != nil {
		return err
	}
	tlsCfg := &api.TLSConfig{
		CACert:        e.get(api.EnvVaultCACert),
		CACertBytes:   []byte(e.get(api.EnvVaultCACertBytes)),
		CAPath:        e.get(api.EnvVaultCAPath),
		ClientCert:    e.get(api.EnvVaultClientCert),
		ClientKey:     e.get(api.EnvVaultClientKey),
		TLSServerName: e.get(api.EnvVaultTLSServerName),
		Insecure:      insecure,
	}
	if err := cfg.ConfigureTLS(tlsCfg); err != nil {
		return badConfig("the TLS settings (VAULT_CACERT, VAULT_CLIENT_CERT...) cannot be used: %v", err)
	}
	if v := e.get(api.EnvVaultClientTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			n, nerr := strconv.Atoi(v)
			if nerr != nil || n < 0 {
				return badConfig("%s is not a duration", api.EnvVaultClientTimeout)
			}
			d = time.Duration(n) * time.Second
		}
		cfg.Timeout = d
	}
	if v := e.get(api.EnvVaultMaxRetries); v != "" {
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			return badConfig("%s is not a number", api.EnvVaultMaxRetries)
		}
		cfg.MaxRetries = int(n)
	}
	cfg.DisableRedirects, err = e.bool(api.EnvVaultDisableRedirects)
	return err
}

// envHeaders adds VAULT_HEADERS (a JSON object of strings; X-Vault-
// headers refused, as the client refuses them) to h.
func envHeaders(e env, h http.Header) error {
	v := e.get(api.EnvVaultHeaders)
	if v == "" {
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return badConfig("%s is not a JSON object of strings", api.EnvVaultHeaders)
	}
	for k, val := range m {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), "X-Vault-") {
			return badConfig("%s may not set X-Vault- headers", api.EnvVaultHeaders)
		}
		h.Add(k, val)
	}
	return nil
}
