package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/envread"
)

// childEnv is the child's environment, in order: keyprov's own variables,
// then those the env files add; a later file's value replaces an earlier
// one in place.
type childEnv struct {
	names []string
	vars  map[string]string
}

// newChildEnv makes the environment of environ ("NAME=VALUE" entries, as
// [os.Environ] gives them) with the env files applied, later files winning.
func newChildEnv(environ []string, files []envFile) *childEnv {
	e := &childEnv{vars: make(map[string]string)}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		e.set(name, value)
	}
	for _, f := range files {
		names := make([]string, 0, len(f.vars))
		for name := range f.vars {
			names = append(names, name)
		}
		slices.Sort(names) // a file's own order is lost in its map; keep the output stable
		for _, name := range names {
			e.set(name, f.vars[name])
		}
	}
	return e
}

func (e *childEnv) set(name, value string) {
	if _, ok := e.vars[name]; !ok {
		e.names = append(e.names, name)
	}
	e.vars[name] = value
}

func (e *childEnv) unset(name string) {
	if _, ok := e.vars[name]; !ok {
		return
	}
	delete(e.vars, name)
	e.names = slices.DeleteFunc(e.names, func(n string) bool { return n == name })
}

func (e *childEnv) lookup(name string) (string, bool) {
	v, ok := e.vars[name]
	return v, ok
}

// environ returns the environment as "NAME=VALUE" entries, with the values
// of keys replaced by those of keys (by variable name).
func (e *childEnv) environ(keys map[string]keyprovider.Key) []string {
	out := make([]string, 0, len(e.names)+len(keys))
	for _, name := range e.names {
		v := e.vars[name]
		if k, ok := keys[name]; ok {
			v = k.Reveal()
		}
		out = append(out, name+"="+v)
	}
	return out
}

// scrubbedVars are the variables --scrub removes from the child's
// environment once the references are resolved: the settings and
// credentials of the backends keyprov reads. Every VAULT_ variable
// (address, token, namespace, TLS settings...) goes, as do 1Password's
// Connect and service-account settings; of AWS's, only the credentials and
// the Secrets Manager endpoint go, since the region, the profile and the
// config files serve any other AWS use the child makes.
var scrubbedVars = []string{
	"OP_CONNECT_HOST", "OP_CONNECT_TOKEN", "OP_SERVICE_ACCOUNT_TOKEN",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_ENDPOINT_URL_SECRETS_MANAGER",
}

// scrubbedPrefixes are the prefixes of the variables --scrub removes.
var scrubbedPrefixes = []string{"VAULT_"}

func (e *childEnv) scrub() {
	for _, name := range slices.Clone(e.names) {
		if slices.Contains(scrubbedVars, name) || slices.ContainsFunc(scrubbedPrefixes, func(p string) bool {
			return strings.HasPrefix(name, p)
		}) {
			e.unset(name)
		}
	}
}

// binding is one variable of the child's environment whose value keyprov
// resolves: a reference, or a known service's variables.
type binding struct {
	// name is the variable the child gets the key in: the variable
	// holding the reference, or the service's EnvVar for its _FILE twin.
	name string
	// drop is the _FILE twin the child does not get, or "".
	drop string
	// svc is the service the key is for; the zero Service for any other
	// variable (its key is checked only for being fit for a header).
	svc keyprovider.Service
	// source says where the key comes from, without the key.
	source string
	// p reads the key.
	p keyprovider.Provider
}

// errResolve is wrapped by the errors of the resolution of references.
var errResolve = errors.New("cannot resolve")

// bindings opens every reference of e (of the variables of only, if any):
// a known service's variables (TESSERA_API_KEY holding a reference
// of any scheme, or TESSERA_API_KEY_FILE) through [keyprovider.FromEnv],
// exactly as the service would; any other variable whose value is a
// reference of a scheme keyprov resolves (linked, or left out of this
// build) through [keyprovider.Open]. Values
// of other schemes (http://, postgres://) and literal values are left as
// they are. inject is the environment given to the backends: nil for the
// process's own. On error, the bindings opened so far are closed.
func bindings(ctx context.Context, e *childEnv, inject lookupFunc, only []string) (bs []binding, err error) {
	defer func() {
		if err != nil {
			closeBindings(bs)
			bs = nil
		}
	}()
	selected := func(names ...string) bool {
		if len(only) == 0 {
			return true
		}
		return slices.ContainsFunc(names, func(n string) bool { return slices.Contains(only, n) })
	}
	opts := []keyprovider.EnvOption{keyprovider.WithLookupEnv(inject)}
	serviceVars := map[string]bool{}
	for _, svc := range keyprovider.KnownServices() {
		fileVar := svc.EnvVar + envread.FileSuffix
		serviceVars[svc.EnvVar], serviceVars[fileVar] = true, true
		v, isSet := e.lookup(svc.EnvVar)
		_, fileSet := e.lookup(fileVar)
		if !(isSet && envread.IsRef(strings.TrimSpace(v)) || fileSet) || !selected(svc.EnvVar, fileVar) {
			continue
		}
		p, err := fromEnv(ctx, svc, opts...)
		if err != nil {
			return bs, fmt.Errorf("%s: %w: %w", svc.EnvVar, errResolve, err)
		}
		bs = append(bs, binding{name: svc.EnvVar, drop: fileVar, svc: svc, source: describeSource(p.Source()), p: p})
	}
	schemes := keyprovSchemes()
	for _, name := range e.names {
		v := e.vars[name]
		scheme, _, ok := envread.SplitScheme(v)
		if serviceVars[name] || !ok || !slices.Contains(schemes, strings.ToLower(scheme)) || !selected(name) {
			continue
		}
		ref, err := parseRef(v)
		if err == nil {
			var p keyprovider.Provider
			if p, err = openRef(ctx, v, keyprovider.Service{}, opts...); err == nil {
				bs = append(bs, binding{name: name, source: describeSource(keyprovider.EnvSource{Var: name, Ref: ref}), p: p})
				continue
			}
		}
		var re *keyprovider.RefError
		if errors.As(err, &re) && re.Var == "" {
			re.Var = name
		}
		return bs, fmt.Errorf("%s: %w: %w", name, errResolve, err)
	}
	for _, name := range only {
		if !slices.ContainsFunc(bs, func(b binding) bool { return b.name == name || b.drop == name }) {
			if _, ok := e.lookup(name); !ok {
				return bs, fmt.Errorf("%s: %w: --only names a variable that is not set", name, errResolve)
			}
		}
	}
	return bs, nil
}

// closeBindings closes the providers of bs that have a Close method.
func closeBindings(bs []binding) {
	for _, b := range bs {
		if c, ok := b.p.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
}
