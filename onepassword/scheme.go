package onepassword

import (
	"context"

	"github.com/keyprovider/keyprovider"
)

// Scheme is the reference scheme this package opens, 1Password's own:
//
//	op://VAULT/ITEM/[SECTION/]FIELD[?attribute=A]
//
// Importing the package, even blank, registers it with
// [keyprovider.RegisterScheme], so that [keyprovider.FromEnv] and
// [keyprovider.Open] resolve op:// references:
//
//	import _ "github.com/keyprovider/keyprovider/onepassword"
const Scheme = "op"

func init() { keyprovider.RegisterScheme(Scheme, keyprovider.OpenerFunc(OpenRef)) }

// OpenRef is the [keyprovider.Opener] of op:// references, for a
// [keyprovider.Resolver] wired by hand. It returns the Provider [FromEnv]
// makes for the reference, with OP_CONNECT_HOST, OP_CONNECT_TOKEN and
// OP_SERVICE_ACCOUNT_TOKEN read from req's environment (the process
// environment unless the caller injected another).
func OpenRef(ctx context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
	return FromEnv(ctx, req.Ref.String(), WithService(req.Service), WithLookupEnv(req.LookupEnv))
}
