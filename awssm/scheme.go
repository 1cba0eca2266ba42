package awssm

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/keyprovider/keyprovider"
)

// Scheme is the reference scheme this package opens:
//
//	awssm://NAME-OR-ARN[#FIELD][?region=R&stage=S&version-id=V]
//
// Importing the package, even blank, registers it with
// [keyprovider.RegisterScheme], so that [keyprovider.FromEnv] and
// [keyprovider.Open] resolve awssm:// references:
//
//	import _ "github.com/keyprovider/keyprovider/awssm"
const Scheme = "awssm"

func init() { keyprovider.RegisterScheme(Scheme, keyprovider.OpenerFunc(OpenRef)) }

// OpenRef is the [keyprovider.Opener] of awssm:// references, for a
// [keyprovider.Resolver] wired by hand. It returns a Provider made by
// [FromEnv] for the secret the reference names: #FIELD is
// [WithJSONField], stage is [WithVersionStage], version-id is
// [WithVersionID] and region is [WithRegion].
//
// The AWS configuration comes from req's environment, which is the process
// environment unless the caller injected another: AWS_REGION (or
// AWS_DEFAULT_REGION) when neither the reference nor its ARN names a region,
// AWS_ENDPOINT_URL_SECRETS_MANAGER (or AWS_ENDPOINT_URL), AWS_PROFILE,
// AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, and AWS_ACCESS_KEY_ID with
// AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN). Whatever it does not set
// falls back to the SDK's default chain (shared files, SSO, web identity,
// container and instance roles).
func OpenRef(ctx context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
	ref := req.Ref
	opts := []Option{WithService(req.Service)}
	if ref.Field != "" {
		opts = append(opts, WithJSONField(ref.Field))
	}
	if s := ref.Param("stage"); s != "" {
		opts = append(opts, WithVersionStage(s))
	}
	if v := ref.Param("version-id"); v != "" {
		opts = append(opts, WithVersionID(v))
	}
	region := ref.Param("region")
	if region == "" && !strings.HasPrefix(ref.Path, "arn:") {
		region = firstEnv(req, "AWS_REGION", "AWS_DEFAULT_REGION")
	}
	if region != "" {
		opts = append(opts, WithRegion(region))
	}
	if endpoint := firstEnv(req, "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"); endpoint != "" {
		opts = append(opts, WithEndpoint(endpoint))
	}
	if load := envLoadOptions(req); len(load) > 0 {
		opts = append(opts, func(o *Options) { o.LoadOptions = append(o.LoadOptions, load...) })
	}
	return FromEnv(ctx, ref.Path, opts...)
}

// envLoadOptions turns the profile, file and credential variables of req's
// environment into load options, so that an injected environment (an env
// file checked by keyprov) configures the client as the process environment
// would.
func envLoadOptions(req keyprovider.OpenRequest) []func(*config.LoadOptions) error {
	var load []func(*config.LoadOptions) error
	if p := firstEnv(req, "AWS_PROFILE"); p != "" {
		load = append(load, config.WithSharedConfigProfile(p))
	}
	if f := firstEnv(req, "AWS_CONFIG_FILE"); f != "" {
		load = append(load, config.WithSharedConfigFiles([]string{f}))
	}
	if f := firstEnv(req, "AWS_SHARED_CREDENTIALS_FILE"); f != "" {
		load = append(load, config.WithSharedCredentialsFiles([]string{f}))
	}
	id, secret := firstEnv(req, "AWS_ACCESS_KEY_ID"), firstEnv(req, "AWS_SECRET_ACCESS_KEY")
	if id != "" && secret != "" {
		creds := aws.Credentials{
			AccessKeyID:     id,
			SecretAccessKey: secret,
			SessionToken:    firstEnv(req, "AWS_SESSION_TOKEN"),
			Source:          "keyprovider environment",
		}
		load = append(load, config.WithCredentialsProvider(aws.CredentialsProviderFunc(
			func(context.Context) (aws.Credentials, error) { return creds, nil })))
	}
	return load
}

// firstEnv returns the first of names set to a non-blank value in req's
// environment.
func firstEnv(req keyprovider.OpenRequest, names ...string) string {
	for _, name := range names {
		if v := strings.TrimSpace(req.Getenv(name)); v != "" {
			return v
		}
	}
	return ""
}
