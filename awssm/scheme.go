package awssm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/keyprovider/keyprovider"
)

// Scheme returns the reference scheme this package opens:
//
//	awssm://NAME-OR-ARN[#FIELD][?region=R&stage=S&version-id=V]
//
// NAME-OR-ARN is a secret's name or its ARN
// (arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME), in the
// characters Secrets Manager allows (letters, digits and "/_+=.@-:"); #FIELD
// is [WithJSONField], stage [WithVersionStage], version-id [WithVersionID]
// and region [WithRegion]. The parser refuses, as
// [keyprovider.ErrInvalidKey] before any request: an ARN of another service,
// a region (in the ARN or the query) that is not an AWS region name such as
// eu-west-1, an account that is not digits, a region differing from the
// ARN's, and both a stage and a version-id.
//
// Importing the package, even blank, registers it with
// [keyprovider.RegisterScheme], so that [keyprovider.FromEnv] and
// [keyprovider.Open] resolve awssm:// references:
//
//	import _ "github.com/keyprovider/keyprovider/awssm"
//
// A [keyprovider.Resolver] wired by hand registers it itself:
// r.Register(awssm.Scheme()).
//
// Opening a reference makes a Provider with [FromConfig]. The AWS
// configuration comes from AWS_REGION (or AWS_DEFAULT_REGION) when neither
// the reference nor its ARN names a region, AWS_ENDPOINT_URL_SECRETS_MANAGER
// (or AWS_ENDPOINT_URL), AWS_PROFILE, AWS_CONFIG_FILE,
// AWS_SHARED_CREDENTIALS_FILE, and AWS_ACCESS_KEY_ID with
// AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN). In the process environment,
// whatever they do not set falls back to the SDK's default chain (shared
// files, SSO, web identity, container and instance roles). In an injected
// environment ([keyprovider.WithLookupEnv]; keyprov --env-file) the
// credentials come from it alone: its keys, or the files it names, or none
// (unsigned requests, which AWS refuses); the process's credentials are
// never sent to an endpoint it names.
func Scheme() keyprovider.Scheme {
	return keyprovider.Scheme{
		Name:   schemeName,
		Field:  true,
		Params: []string{"region", "stage", "version-id"},
		Parse:  parseRef,
		Open:   openRef,
	}
}

const schemeName = "awssm"

func init() { keyprovider.RegisterScheme(Scheme()) }

// parseRef is the grammar of an awssm:// reference: the secret's name or
// ARN, and its parameters.
func parseRef(parts []string, r *keyprovider.Ref) error {
	body := strings.Join(parts, "/")
	if body == "" {
		return errors.New("awssm:// takes a secret name or ARN: awssm://prod/tessera#api_key")
	}
	for i := 0; i < len(body); i++ {
		if !isSecretNameByte(body[i]) {
			return fmt.Errorf("byte %d is not allowed in a secret name or ARN (letters, digits and /_+=.@-: only)", i)
		}
	}
	arnReg := ""
	if strings.HasPrefix(body, "arn:") {
		var err error
		if arnReg, err = parseARNRegion(body); err != nil {
			return err
		}
	}
	if region, ok := r.Params["region"]; ok {
		if !validRegion(region) {
			return errors.New("region must be an AWS region name such as eu-west-1")
		}
		if arnReg != "" && arnReg != region {
			return fmt.Errorf("region %s differs from the ARN's region %s", region, arnReg)
		}
	}
	for _, name := range []string{"stage", "version-id"} {
		if strings.ContainsFunc(r.Params[name], func(c rune) bool { return c < 0x21 || c == 0x7f }) {
			return fmt.Errorf("%s contains a space or a control character", name)
		}
	}
	if r.Params["stage"] != "" && r.Params["version-id"] != "" {
		return errors.New("stage and version-id select a version each; give one")
	}
	r.Path = body
	return nil
}

// isSecretNameByte reports whether c may appear in a Secrets Manager secret
// name or ARN.
func isSecretNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/_+=.@-:", c) >= 0
}

// parseARNRegion returns the region of a Secrets Manager secret ARN,
// "arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME", checking every
// part the parse can check.
func parseARNRegion(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 7)
	if len(parts) != 7 || parts[1] == "" || parts[2] != "secretsmanager" || parts[5] != "secret" || parts[6] == "" {
		return "", errors.New("not a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)")
	}
	if !validRegion(parts[3]) {
		return "", errors.New("the ARN's region is not an AWS region name such as eu-west-1")
	}
	if parts[4] == "" || strings.ContainsFunc(parts[4], func(c rune) bool { return c < '0' || c > '9' }) {
		return "", errors.New("the ARN's account is not an AWS account ID (digits)")
	}
	for _, c := range parts[1] {
		if !(c >= 'a' && c <= 'z' || c == '-') {
			return "", errors.New("the ARN's partition is not an AWS partition such as aws")
		}
	}
	return parts[3], nil
}

// validRegion reports whether s has the shape of an AWS region name: lower-
// case letters and digits in groups joined by single hyphens, starting with
// a letter ("eu-west-1", "us-gov-east-1").
func validRegion(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' || strings.HasSuffix(s, "-") || strings.Contains(s, "--") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// openRef opens an awssm:// reference; see [Scheme].
func openRef(ctx context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
	ref := req.Ref
	env := envOf(req.LookupEnv)
	opts := []Option{WithService(req.Service)}
	if ref.Field != "" {
		opts = append(opts, WithJSONField(ref.Field))
	}
	if s := ref.Params["stage"]; s != "" {
		opts = append(opts, WithVersionStage(s))
	}
	if v := ref.Params["version-id"]; v != "" {
		opts = append(opts, WithVersionID(v))
	}
	region := ref.Params["region"]
	if region == "" && !strings.HasPrefix(ref.Path, "arn:") {
		region = env.first("AWS_REGION", "AWS_DEFAULT_REGION")
	}
	if region != "" {
		opts = append(opts, WithRegion(region))
	}
	if endpoint := env.first("AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"); endpoint != "" {
		opts = append(opts, WithEndpoint(endpoint))
	}
	if load := env.loadOptions(); len(load) > 0 {
		opts = append(opts, func(o *Options) { o.LoadOptions = append(o.LoadOptions, load...) })
	}
	return FromConfig(ctx, ref.Path, opts...)
}

// environment is the environment a reference is opened in: the process's
// (lookup nil, the SDK's default chain applies) or an injected one, which
// alone provides the credentials.
type environment struct {
	lookup func(string) (string, bool)
}

func envOf(lookup func(string) (string, bool)) environment { return environment{lookup: lookup} }

// injected reports whether the caller injected the environment.
func (e environment) injected() bool { return e.lookup != nil }

// first returns the first of names set to a non-blank value. In the process
// environment it returns "": the SDK reads that itself.
func (e environment) first(names ...string) string {
	if e.lookup == nil {
		return ""
	}
	for _, name := range names {
		if v, ok := e.lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loadOptions turns the profile, file and credential variables of an
// injected environment into load options that replace the SDK's default
// chain, so that the process's credentials (its variables, its
// ~/.aws files, its instance role) are never used for it.
func (e environment) loadOptions() []func(*config.LoadOptions) error {
	if !e.injected() {
		return nil
	}
	load := []func(*config.LoadOptions) error{
		config.WithSharedConfigFiles(nonEmpty(e.first("AWS_CONFIG_FILE"))),
		config.WithSharedCredentialsFiles(nonEmpty(e.first("AWS_SHARED_CREDENTIALS_FILE"))),
	}
	if p := e.first("AWS_PROFILE"); p != "" {
		load = append(load, config.WithSharedConfigProfile(p))
	}
	id, secret := e.first("AWS_ACCESS_KEY_ID"), e.first("AWS_SECRET_ACCESS_KEY")
	switch {
	case id != "" && secret != "":
		creds := aws.Credentials{
			AccessKeyID:     id,
			SecretAccessKey: secret,
			SessionToken:    e.first("AWS_SESSION_TOKEN"),
			Source:          "keyprovider environment",
		}
		load = append(load, config.WithCredentialsProvider(aws.CredentialsProviderFunc(
			func(context.Context) (aws.Credentials, error) { return creds, nil })))
	case e.first("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE") == "":
		// Nothing in the environment names a credential: none is sent.
		load = append(load, config.WithCredentialsProvider(aws.AnonymousCredentials{}))
	}
	return load
}

func nonEmpty(path string) []string {
	if path == "" {
		return []string{}
	}
	return []string{path}
}
