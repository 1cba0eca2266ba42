package onepassword

import (
	"context"
	"os"
	"strings"

	sdk "github.com/1password/onepassword-sdk-go"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
)

// The variables [FromEnv] reads.
const (
	EnvServiceAccountToken = "OP_SERVICE_ACCOUNT_TOKEN"
	EnvConnectHost         = "OP_CONNECT_HOST"
	EnvConnectToken        = "OP_CONNECT_TOKEN"
)

// FromEnv returns a Provider reading ref with credentials from the
// environment:
//
//   - a Connect server ([NewConnectClient], [NewConnect]) when
//     OP_CONNECT_HOST and OP_CONNECT_TOKEN are set; one without the other
//     is a configuration error. Connect wins over a service account token
//     set alongside it, as in the op CLI.
//   - otherwise the SDK ([New]) with a client authenticated by
//     OP_SERVICE_ACCOUNT_TOKEN and identified by [Options.IntegrationName]
//     and [Options.IntegrationVersion].
//
// The variables are read through [Options.LookupEnv] only: with an injected
// environment (an env file checked by keyprov), the process's own
// OP_CONNECT_HOST, OP_CONNECT_TOKEN and OP_SERVICE_ACCOUNT_TOKEN are never
// used, so an env file naming a host cannot have the process's token sent
// there. Neither client reads the environment itself.
//
// With neither, or with a reference the SDK rejects, FromEnv fails with an
// error wrapping [keyprovider.ErrInvalidKey]. A service account token the SDK
// cannot parse is [keyprovider.ErrPermission], with the SDK's reason and
// without the token. Making the SDK client does not contact 1Password.
func FromEnv(ctx context.Context, ref string, opts ...Option) (*Provider, error) {
	o := options(opts)
	lookup := o.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	get := func(name string) string { v, _ := lookup(name); return strings.TrimSpace(v) }
	host, ctoken, satoken := get(EnvConnectHost), get(EnvConnectToken), get(EnvServiceAccountToken)

	switch {
	case host != "" || ctoken != "":
		if host == "" {
			return nil, configError(ref, "%s is set but %s is not; Connect needs both", EnvConnectToken, EnvConnectHost)
		}
		if ctoken == "" {
			return nil, configError(ref, "%s is set but %s is not; Connect needs both", EnvConnectHost, EnvConnectToken)
		}
		client, err := NewConnectClient(host, ctoken)
		if err != nil {
			return nil, newError(ref, keyprovider.ErrInvalidKey, err, redact.NewSecret(ctoken))
		}
		return newProvider(ctx, &connectBackend{c: client, ids: &connectIDs{}}, ref, o, client.token)

	case satoken != "":
		// Check the reference first: it is cheap, and a typo should not
		// be reported as a token problem.
		r, err := parseReference(ctx, ref)
		if err != nil {
			return nil, err
		}
		name, version := o.IntegrationName, o.IntegrationVersion
		if name == "" {
			name = "keyprovider"
		}
		if version == "" {
			version = moduleVersion()
		}
		cred := redact.NewSecret(satoken)
		client, err := sdk.NewClient(ctx, sdk.WithServiceAccountToken(satoken), sdk.WithIntegrationInfo(name, version))
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, newError(ref, nil, ctxErr)
			}
			return nil, newError(ref, classifySDK(err), err, cred)
		}
		return assemble(&sdkBackend{r: client.Secrets()}, ref, r, o, cred)
	}
	return nil, configError(ref, "no 1Password credentials: set %s, or %s and %s", EnvServiceAccountToken, EnvConnectHost, EnvConnectToken)
}
