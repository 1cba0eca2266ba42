package awssm

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyprovider/keyprovider/internal/redact"
)

// The variables [FromEnv] reads from an injected environment.
const (
	EnvRegion               = "AWS_REGION"
	EnvDefaultRegion        = "AWS_DEFAULT_REGION"
	EnvAccessKeyID          = "AWS_ACCESS_KEY_ID"
	EnvSecretAccessKey      = "AWS_SECRET_ACCESS_KEY"
	EnvSessionToken         = "AWS_SESSION_TOKEN"
	EnvEndpoint             = "AWS_ENDPOINT_URL_SECRETS_MANAGER"
	EnvEndpointAll          = "AWS_ENDPOINT_URL"
	EnvProfile              = "AWS_PROFILE"
	EnvConfigFile           = "AWS_CONFIG_FILE"
	EnvSharedCredentialFile = "AWS_SHARED_CREDENTIALS_FILE"
)

// FromEnv returns a Provider reading secretID through a client it builds,
// and owns: [Provider.Close] closes its idle connections. Credentials are
// resolved at the first Fetch, not here. A configuration that cannot be
// loaded is [keyprovider.ErrInvalidKey].
//
// Without [WithLookupEnv], the client comes from the SDK's default chain
// ([config.LoadDefaultConfig]: the process environment, the shared files,
// SSO, web identity, container and instance roles), with
// [Options.Region] (else the ARN's region) and [Options.Endpoint] on top.
//
// With [WithLookupEnv], that environment is the whole configuration, so
// that an env file (keyprov check --env-file) can never send the process's
// credentials to an endpoint it names. FromEnv then reads, from it only:
//   - the region: [Options.Region], else the ARN's, else AWS_REGION or
//     AWS_DEFAULT_REGION, else the profile's; none is a configuration error;
//   - the endpoint: [Options.Endpoint], else AWS_ENDPOINT_URL_SECRETS_MANAGER
//     or AWS_ENDPOINT_URL, else AWS's endpoint for the region;
//   - the credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with
//     AWS_SESSION_TOKEN), else the static keys of the profile AWS_PROFILE
//     (or "default") in the files AWS_CONFIG_FILE and
//     AWS_SHARED_CREDENTIALS_FILE name. The files in the home directory are
//     read only if the environment names them; profiles that assume roles,
//     use SSO or run a process are refused; instance and container roles
//     are never used. No credentials is a configuration error.
func FromEnv(ctx context.Context, secretID string, opts ...Option) (*Provider, error) {
	o := options(opts)
	if err := checkSecretID(secretID, o); err != nil {
		return nil, err
	}
	if o.Region != "" {
		if err := checkRegion(o.Region); err != nil {
			return nil, configError(secretID, "%v", err)
		}
	}
	var (
		cfg      aws.Config
		endpoint = o.Endpoint
		err      error
	)
	if o.LookupEnv != nil {
		cfg, endpoint, err = injectedConfig(ctx, secretID, o)
	} else {
		cfg, err = defaultConfig(ctx, secretID, o)
	}
	if err != nil {
		return nil, err
	}
	tr := ownHTTPClient(&cfg)
	isolated := o.LookupEnv != nil
	clientOpts := append([]func(*secretsmanager.Options){func(so *secretsmanager.Options) {
		switch {
		case endpoint != "":
			so.BaseEndpoint = aws.String(endpoint)
		case isolated:
			so.BaseEndpoint = nil // AWS's own endpoint for the region
		}
	}}, o.ClientOptions...)
	p, err := New(secretsmanager.NewFromConfig(cfg, clientOpts...), secretID, opts...)
	if err != nil {
		return nil, err
	}
	p.res.owned = tr
	return p, nil
}

// regionOf returns the region FromEnv starts from: the option's, else the
// ARN's.
func regionOf(secretID string, o Options) string {
	if o.Region == "" && strings.HasPrefix(secretID, "arn:") {
		region, _ := arnRegion(secretID) // checkSecretID reported a bad ARN
		return region
	}
	return o.Region
}

// defaultConfig loads the SDK's default configuration chain.
func defaultConfig(ctx context.Context, secretID string, o Options) (aws.Config, error) {
	var load []func(*config.LoadOptions) error
	if region := regionOf(secretID, o); region != "" {
		load = append(load, config.WithRegion(region))
	}
	load = append(load, o.LoadOptions...)
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		if ctx.Err() != nil {
			return aws.Config{}, newError(secretID, nil, err)
		}
		return aws.Config{}, configError(secretID, "loading the AWS configuration: %w", err)
	}
	return cfg, nil
}

// injectedConfig builds the configuration from o.LookupEnv alone, and
// returns the endpoint it names (empty: AWS's). See FromEnv.
func injectedConfig(ctx context.Context, secretID string, o Options) (aws.Config, string, error) {
	if len(o.LoadOptions) > 0 {
		return aws.Config{}, "", configError(secretID, "LoadOptions configure the SDK's default chain, which reads the process environment; they cannot be combined with LookupEnv")
	}
	get := func(names ...string) string {
		for _, name := range names {
			if v, ok := o.LookupEnv(name); ok && strings.TrimSpace(v) != "" {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	region := regionOf(secretID, o)
	if region == "" {
		region = get(EnvRegion, EnvDefaultRegion)
	}
	creds, profileRegion, err := injectedCreds(ctx, get)
	if err != nil {
		return aws.Config{}, "", configError(secretID, "%v", err)
	}
	if region == "" {
		region = profileRegion
	}
	if region == "" {
		return aws.Config{}, "", configError(secretID, "no AWS region: the environment sets neither %s nor %s, and the secret ID is not an ARN", EnvRegion, EnvDefaultRegion)
	}
	if err := checkRegion(region); err != nil {
		return aws.Config{}, "", configError(secretID, "%v", err)
	}
	endpoint := o.Endpoint
	if endpoint == "" {
		endpoint = get(EnvEndpoint, EnvEndpointAll)
	}
	cfg := aws.Config{
		Region:      region,
		Credentials: aws.NewCredentialsCache(credentialsValue(creds)),
	}
	return cfg, endpoint, nil
}

// injectedCreds returns the static credentials an injected environment
// holds, and the region of the profile they came from, if any.
func injectedCreds(ctx context.Context, get func(...string) string) (aws.Credentials, string, error) {
	id, secret := get(EnvAccessKeyID), get(EnvSecretAccessKey)
	switch {
	case id != "" && secret != "":
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: get(EnvSessionToken),
			Source: "keyprovider injected environment"}, "", nil
	case id != "" || secret != "":
		return aws.Credentials{}, "", fmt.Errorf("the environment sets one of %s and %s but not the other", EnvAccessKeyID, EnvSecretAccessKey)
	}
	cfgFile, credFile, profile := get(EnvConfigFile), get(EnvSharedCredentialFile), get(EnvProfile)
	if cfgFile == "" && credFile == "" {
		if profile != "" {
			return aws.Credentials{}, "", fmt.Errorf("the environment names profile %q but neither %s nor %s; the files in the home directory are not read for an injected environment", profile, EnvConfigFile, EnvSharedCredentialFile)
		}
		return aws.Credentials{}, "", fmt.Errorf("no AWS credentials in the environment: set %s and %s, or a profile in %s or %s", EnvAccessKeyID, EnvSecretAccessKey, EnvConfigFile, EnvSharedCredentialFile)
	}
	if profile == "" {
		profile = "default"
	}
	files := func(f string) []string {
		if f == "" {
			return []string{} // empty, not nil: no file, not the default one
		}
		return []string{f}
	}
	sc, err := config.LoadSharedConfigProfile(ctx, profile, func(lo *config.LoadSharedConfigOptions) {
		lo.ConfigFiles, lo.CredentialsFiles = files(cfgFile), files(credFile)
	})
	if err != nil {
		return aws.Credentials{}, "", fmt.Errorf("profile %q: %w", profile, err)
	}
	if !sc.Credentials.HasKeys() {
		return aws.Credentials{}, "", fmt.Errorf("profile %q holds no static keys; from an injected environment only static keys are used (no roles, SSO, processes or instance roles)", profile)
	}
	return sc.Credentials, sc.Region, nil
}

// ownHTTPClient replaces the SDK's buildable HTTP client in cfg (the one
// LoadDefaultConfig made, CA bundle included, or a new one) by a plain
// client over a transport of its own, and returns that transport, which
// the Provider owns: the buildable client copies its transport at every
// turn, so no one could close the idle connections of the one it uses.
// A client the caller set through LoadOptions is left alone (nil).
func ownHTTPClient(cfg *aws.Config) *http.Transport {
	b, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
	switch {
	case cfg.HTTPClient == nil:
		b = awshttp.NewBuildableClient()
	case !ok:
		return nil
	}
	tr := b.GetTransport()
	cfg.HTTPClient = &http.Client{
		Transport: tr,
		Timeout:   b.GetTimeout(),
		// Like the SDK's own client, do not follow redirects.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return tr
}

// credentialsValue is a provider of fixed credentials.
func credentialsValue(c aws.Credentials) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil })
}

// recordingCreds wraps the credentials of a Provider's client and keeps
// the secret parts of the last credentials retrieved, for the scrubbing of
// errors (see Provider.fail).
type recordingCreds struct {
	inner aws.CredentialsProvider
	last  atomic.Pointer[[]redact.Secret]
}

// Retrieve implements [aws.CredentialsProvider].
func (r *recordingCreds) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := r.inner.Retrieve(ctx)
	if err != nil {
		return c, err
	}
	// The SDK asks on every signed request; record only what changed.
	if last := r.last.Load(); last != nil && (*last)[0].Reveal() == c.SecretAccessKey && (*last)[1].Reveal() == c.SessionToken {
		return c, nil
	}
	secrets := []redact.Secret{redact.NewSecret(c.SecretAccessKey), redact.NewSecret(c.SessionToken)}
	r.last.Store(&secrets)
	return c, nil
}

// secrets returns the secret parts of the last credentials retrieved.
func (r *recordingCreds) secrets() []string {
	if r == nil {
		return nil
	}
	if last := r.last.Load(); last != nil {
		return redact.RevealAll(*last)
	}
	return nil
}
