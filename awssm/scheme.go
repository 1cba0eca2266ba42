package awssm

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
// Opening a reference makes a Provider with [FromEnv]. The AWS
// configuration comes from AWS_REGION (or AWS_DEFAULT_REGION) when neither
// the reference nor its ARN names a region, AWS_ENDPOINT_URL_SECRETS_MANAGER
// (or AWS_ENDPOINT_URL), AWS_PROFILE, AWS_CONFIG_FILE,
// AWS_SHARED_CREDENTIALS_FILE, and AWS_ACCESS_KEY_ID with
// AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN). In the process environment,
// whatever they do not set falls back to the SDK's default chain (shared
// files, SSO, web identity, container and instance roles). In an injected
// environment ([keyprovider.WithLookupEnv]; keyprov --env-file) the
// credentials come from it alone (its keys, or the files it names); one
// that names none is refused when the reference is opened, and the
// process's credentials are never sent to an endpoint it names.
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
		if arnReg, err = arnRegion(body); err != nil {
			return err
		}
	}
	if region, ok := r.Params["region"]; ok {
		if err := checkRegion(region); err != nil {
			return err
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

// openRef opens an awssm:// reference; see [Scheme]. The reference's
// parameters become options of [FromEnv]; an injected environment
// ([keyprovider.WithLookupEnv], keyprov --env-file) is passed on with
// [WithLookupEnv], so that it alone configures the client and its
// credentials.
func openRef(ctx context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
	ref := req.Ref
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
	if r := ref.Params["region"]; r != "" {
		opts = append(opts, WithRegion(r))
	}
	if req.LookupEnv != nil {
		opts = append(opts, WithLookupEnv(req.LookupEnv))
	}
	return FromEnv(ctx, ref.Path, opts...)
}
