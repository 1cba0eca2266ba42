package onepassword

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/keyprovider/keyprovider"
)

// Scheme returns the reference scheme this package opens, 1Password's own:
//
//	op://VAULT/ITEM/[SECTION/]FIELD[?attribute=A&ssh-format=F]
//
// The reference is taken as written (spaces included, no "%" escapes) and
// passed to 1Password as it is; the parser checks its shape (three or four
// non-empty parts) and its parameters, and 1Password checks the rest when
// it is opened.
//
// Importing the package, even blank, registers it with
// [keyprovider.RegisterScheme], so that [keyprovider.FromEnv] and
// [keyprovider.Open] resolve op:// references:
//
//	import _ "github.com/keyprovider/keyprovider/onepassword"
//
// A [keyprovider.Resolver] wired by hand registers it itself:
// r.Register(onepassword.Scheme()).
//
// Opening a reference returns the Provider [FromEnv] makes for it, with
// OP_CONNECT_HOST, OP_CONNECT_TOKEN and OP_SERVICE_ACCOUNT_TOKEN read from
// the caller's injected environment alone when there is one
// ([keyprovider.WithLookupEnv]; keyprov --env-file), else from the process
// environment.
func Scheme() keyprovider.Scheme {
	return keyprovider.Scheme{
		Name:   schemeName,
		Opaque: true,
		Params: []string{"attribute", "ssh-format"},
		Parse:  parseRef,
		Open:   openRef,
	}
}

const schemeName = "op"

func init() { keyprovider.RegisterScheme(Scheme()) }

// parseRef checks the shape of an op:// reference: a vault, an item, an
// optional section and a field.
func parseRef(parts []string, r *keyprovider.Ref) error {
	if len(parts) < 3 || len(parts) > 4 || slices.Contains(parts, "") {
		return errors.New("op:// takes a vault, an item, an optional section and a field: op://VAULT/ITEM/[SECTION/]FIELD")
	}
	r.Path = strings.Join(parts, "/")
	return nil
}

// openRef opens an op:// reference; see [Scheme].
func openRef(ctx context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
	opts := []Option{WithService(req.Service)}
	if req.LookupEnv != nil {
		opts = append(opts, WithLookupEnv(req.LookupEnv))
	}
	return FromEnv(ctx, req.Ref.String(), opts...)
}
