package main

import (
	"context"

	"github.com/keyprovider/keyprovider"
)

// resolved is a key and where it came from.
type resolved struct {
	key keyprovider.Key
	// variable is the variable that configured the key: TESSERA_API_KEY,
	// or TESSERA_API_KEY_FILE. Empty when none is set.
	variable string
	// source is the reference the variable holds, or "literal". Empty when
	// it could not be told.
	source string
}

// resolve gets svc's key from the environment lookup reads, through
// [keyprovider.FromEnv]: the very code path a service takes at start-up,
// followed by one Fetch. Where the key comes from is reported even when
// fetching it fails.
func resolve(ctx context.Context, svc keyprovider.Service, lookup lookupFunc) (resolved, error) {
	opt := keyprovider.WithLookupEnv(lookup)
	var res resolved
	if src, err := keyprovider.SourceFromEnv(svc, opt); err == nil {
		res.variable, res.source = src.Var, describeSource(src)
	}
	p, err := keyprovider.FromEnv(ctx, svc, opt)
	if err != nil {
		return res, err
	}
	defer p.Close()
	res.key, err = p.Fetch(ctx)
	return res, err
}

// describeSource is what check shows as a key's source: the reference, or
// "literal" for a key given as it is. It never shows a key.
func describeSource(src keyprovider.EnvSource) string {
	if src.IsLiteral() {
		return "literal"
	}
	return src.Ref.String()
}
