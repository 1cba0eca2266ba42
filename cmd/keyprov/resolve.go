package main

import (
	"context"
	"errors"

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

// resolve gets svc's key from e through [keyprovider.FromEnv]: the very
// code path a service takes at start-up, followed by one Fetch. Where the
// key comes from is reported even when fetching it fails.
func resolve(ctx context.Context, svc keyprovider.Service, e environment) (resolved, error) {
	var res resolved
	p, err := fromEnv(ctx, svc, keyprovider.WithLookupEnv(e.inject))
	if err != nil {
		res.variable = variableOf(err)
		return res, err
	}
	defer p.Close()
	res.variable, res.source = p.Source().Var, describeSource(p.Source())
	res.key, err = p.Fetch(ctx)
	return res, err
}

// variableOf is the variable an error of FromEnv is about, if it says.
func variableOf(err error) string {
	var re *keyprovider.RefError
	if errors.As(err, &re) {
		return re.Var
	}
	return ""
}

// describeSource is what check shows as a key's source: the reference, or
// "literal" for a key given as it is. It never shows a key: the reference
// is shown as [keyprovider.EnvSource.String] shows it, with any part that
// could be a key as its fingerprint.
func describeSource(src keyprovider.EnvSource) string {
	if src.Ref.Scheme == "" { // the variable holds the key itself
		return "literal"
	}
	const v = "V" // a variable name that is not a _FILE one, so String shows the reference
	s := keyprovider.EnvSource{Var: v, Ref: src.Ref}.String()
	return s[len(v)+1:]
}
