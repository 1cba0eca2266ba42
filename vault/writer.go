package vault

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotation"
)

var _ rotation.Writer = (*Provider)(nil)

// errPinnedVersion is the cause of a write through a Provider pinned to a
// KV v2 version.
var errPinnedVersion = errors.New("the Provider reads a pinned version; rotation writes the latest")

// Stage checks that next can replace current, the key Fetch returned, and
// writes nothing: Vault has no version readers are not given, so the new
// version is written by [Provider.Promote] alone, after the caller verified
// the key. On KV v2 the stage is [rotation.Deferred], conditioned on
// current's version, which must still be the latest (else
// [rotation.ErrConflict]); on KV v1 it is [rotation.Unconditional].
func (p *Provider) Stage(ctx context.Context, current, next keyprovider.Key) (rotation.Staged, error) {
	if next.Equal(current) {
		return rotation.Staged{}, p.failWrite(next, keyprovider.ErrInvalidKey, rotation.ErrSameKey)
	}
	if _, err := p.o.Service.ParseKey(next.Reveal(), ""); err != nil {
		return rotation.Staged{}, p.failWrite(next, keyprovider.ErrInvalidKey, err)
	}
	if p.o.Version > 0 {
		return rotation.Staged{}, p.failWrite(next, keyprovider.ErrInvalidKey, errPinnedVersion)
	}
	if err := p.login(ctx, false); err != nil {
		return rotation.Staged{}, p.failWrite(next, nil, err)
	}
	mount, rel, kv, err := p.resolve(ctx)
	if err != nil {
		return rotation.Staged{}, p.failWrite(next, nil, err)
	}
	st := rotation.Staged{Mode: rotation.Unconditional, Current: current.Version(), Next: next, Previous: current}
	if kv == 1 {
		return st, nil
	}
	st.Mode = rotation.Deferred
	m, err := p.c.KVv2(mount).GetMetadata(ctx, rel)
	if err != nil {
		return rotation.Staged{}, p.failWrite(next, nil, err)
	}
	if strconv.Itoa(m.CurrentVersion) != current.Version() {
		return rotation.Staged{}, p.failWrite(next, rotation.ErrConflict,
			fmt.Errorf("the latest version is %d, not version %s that was read", m.CurrentVersion, current.Version()))
	}
	return st, nil
}

// Promote writes the staged key as the secret's new version: the secret's
// data as it was at s.Current, with the key's field replaced and the other
// fields kept. On KV v2 the write is a check-and-set on s.Current: a version
// written since is [rotation.ErrConflict] and nothing is written; the old
// key stays readable as the previous version (vault kv get -version=N). On
// KV v1 the write replaces the secret and the old key is gone.
func (p *Provider) Promote(ctx context.Context, s rotation.Staged) (keyprovider.Key, error) {
	mount, rel, kv, err := p.resolve(ctx)
	if err != nil {
		return keyprovider.Key{}, p.failWrite(s.Next, nil, err)
	}
	if kv == 1 {
		old, err := p.c.KVv1(mount).Get(ctx, rel)
		if err != nil {
			return keyprovider.Key{}, p.failWrite(s.Next, nil, err)
		}
		if err := p.c.KVv1(mount).Put(ctx, rel, p.withKey(old.Data, s.Next)); err != nil {
			return keyprovider.Key{}, p.failWrite(s.Next, nil, err)
		}
		return s.Next, nil
	}
	n, err := strconv.Atoi(s.Current)
	if err != nil {
		return keyprovider.Key{}, p.failWrite(s.Next, keyprovider.ErrInvalidKey, fmt.Errorf("the version read, %q, is not a KV v2 version", s.Current))
	}
	old, err := p.c.KVv2(mount).GetVersion(ctx, rel, n)
	if err != nil {
		return keyprovider.Key{}, p.failWrite(s.Next, nil, err)
	}
	out, err := p.c.KVv2(mount).Put(ctx, rel, p.withKey(old.Data, s.Next), api.WithCheckAndSet(n))
	if err != nil {
		if isCASMismatch(err) {
			return keyprovider.Key{}, p.failWrite(s.Next, rotation.ErrConflict,
				fmt.Errorf("a version was written after version %d, which was read: nothing written", n))
		}
		return keyprovider.Key{}, p.failWrite(s.Next, nil, err)
	}
	version := ""
	if out != nil && out.VersionMetadata != nil {
		version = strconv.Itoa(out.VersionMetadata.Version)
	}
	return keyprovider.NewKey(s.Next.Reveal(), version), nil
}

// Abandon has nothing to undo: Stage wrote nothing.
func (p *Provider) Abandon(context.Context, rotation.Staged) (string, error) {
	return "nothing was written to Vault (it has no staging; the new version is written only on promotion)", nil
}

// withKey is data with the provider's field set to k.
func (p *Provider) withKey(data map[string]any, k keyprovider.Key) map[string]any {
	out := maps.Clone(data)
	if out == nil {
		out = map[string]any{}
	}
	out[p.o.Field] = k.Reveal()
	return out
}

// isCASMismatch reports whether err is Vault refusing a check-and-set
// write: a 400 saying the cas parameter did not match.
func isCASMismatch(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	return strings.Contains(strings.Join(re.Errors, " "), "check-and-set")
}

// failWrite is fail for the write methods: next is scrubbed as well, and
// kind, when not nil, replaces the classification.
func (p *Provider) failWrite(next keyprovider.Key, kind, err error) error {
	secrets := append(p.secrets(), next.Reveal())
	e := failure(p.ref(), err, secrets...)
	if ke := (*keyprovider.Error)(nil); kind != nil && errors.As(e, &ke) {
		ke.Kind = kind
	}
	return e
}
