package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyprovider/keyprovider"
)

// excludedBackends maps the scheme of each backend this keyprov was built
// without to the build tag that left it out ("vault" → "keyprov_no_vault").
// The init of each backend_*_excluded.go file adds its own; in a default
// build it is empty.
var excludedBackends = map[string]string{}

// withBuildHint returns err, telling the operator the keyprov build lacks
// the backend when err is the [keyprovider.ErrSchemeNotLinked] of a scheme
// excluded by a build tag. The library's own hint ("add import _ ... to the
// program") is for a program's author; keyprov's operator needs another
// binary. The error stays a [*keyprovider.RefError] wrapping
// [keyprovider.ErrSchemeNotLinked].
func withBuildHint(err error) error {
	var re *keyprovider.RefError
	if !errors.Is(err, keyprovider.ErrSchemeNotLinked) || !errors.As(err, &re) {
		return err
	}
	scheme, _, _ := strings.Cut(re.Ref, "://")
	scheme = strings.ToLower(scheme)
	tag, ok := excludedBackends[scheme]
	if !ok {
		return err
	}
	// The RefError is the one this call got back, made for it alone.
	re.Reason = fmt.Sprintf("this keyprov was built with -tags %s, without the %s:// backend: use a keyprov built without that tag", tag, scheme)
	return err
}

// fromEnv is [keyprovider.FromEnv], with the hint of [withBuildHint].
func fromEnv(ctx context.Context, svc keyprovider.Service, opts ...keyprovider.EnvOption) (*keyprovider.EnvProvider, error) {
	p, err := keyprovider.FromEnv(ctx, svc, opts...)
	return p, withBuildHint(err)
}

// openRef is [keyprovider.Open], with the hint of [withBuildHint].
func openRef(ctx context.Context, ref string, svc keyprovider.Service, opts ...keyprovider.EnvOption) (keyprovider.Provider, error) {
	p, err := keyprovider.Open(ctx, ref, svc, opts...)
	return p, withBuildHint(err)
}

// parseRef is [keyprovider.ParseRef], with the hint of [withBuildHint].
func parseRef(s string) (keyprovider.Ref, error) {
	ref, err := keyprovider.ParseRef(s)
	return ref, withBuildHint(err)
}

// keyprovSchemes are the schemes keyprov resolves: those linked in, and those of
// the backends this build excludes, so that exec resolves (and fails on) a
// reference to an excluded backend instead of passing it to the program as
// it is, as it passes http:// or postgres://.
func keyprovSchemes() []string {
	s := keyprovider.Schemes()
	for scheme := range excludedBackends {
		s = append(s, scheme)
	}
	return s
}
