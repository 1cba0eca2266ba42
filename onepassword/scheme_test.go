package onepassword_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/onepassword"
)

func TestSchemeRegistered(t *testing.T) {
	_, err := keyprovider.ParseRef("op://v/i/f")
	assert.NoError(t, err, "importing onepassword registers op://")
	assert.Equal(t, "op", onepassword.Scheme().Name)
}

func TestSchemeParse(t *testing.T) {
	type Ref = keyprovider.Ref
	for _, tc := range []struct {
		in   string
		want Ref
	}{
		{"op://Private/Tessera/credential", Ref{Scheme: "op", Path: "Private/Tessera/credential"}},
		{"op://Prod Vault/Tessera API/keys/api key", Ref{Scheme: "op", Path: "Prod Vault/Tessera API/keys/api key"}},
		{"op://v/i/s/f?attribute=otp", Ref{Scheme: "op", Path: "v/i/s/f", Params: map[string]string{"attribute": "otp"}}},
		{"op://v/i/f%20x", Ref{Scheme: "op", Path: "v/i/f%20x"}},
	} {
		got, err := keyprovider.ParseRef(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
		assert.Equal(t, tc.in, got.String(), "an op:// reference is written as it was given")
	}
	for _, tc := range []struct{ in, want string }{
		{"op://v/i", "op://VAULT/ITEM/[SECTION/]FIELD"},
		{"op://v/i/s/f/g", "op://VAULT/ITEM/[SECTION/]FIELD"},
		{"op://v//f", "op://VAULT/ITEM/[SECTION/]FIELD"},
		{"op://v/i/f#x", "take no #field"},
		{"op://v/i/f?field=x", `unknown parameter "field" (allowed: attribute, ssh-format)`},
	} {
		_, err := keyprovider.ParseRef(tc.in)
		require.Error(t, err, tc.in)
		assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
		assert.Contains(t, err.Error(), tc.want)
	}
}

// TESSERA_API_KEY=op://... with the Connect variables of a deployment.
func TestSchemeFromEnv(t *testing.T) {
	f := newConnectFixture(t)
	env := map[string]string{
		"TESSERA_API_KEY":           "op://prod/tessera/credential",
		onepassword.EnvConnectHost:  f.srv.URL,
		onepassword.EnvConnectToken: f.srv.Token,
	}
	ctx := context.Background()
	p, err := keyprovider.FromEnv(ctx, keyprovider.Tessera,
		keyprovider.WithLookupEnv(func(name string) (string, bool) { v, ok := env[name]; return v, ok }))
	require.NoError(t, err)
	defer p.Close()
	k, err := p.Fetch(ctx)
	require.NoError(t, err)
	assert.Equal(t, connectKey, k.Reveal())

	// The service's format check applies: a Tesseral variable pointing at
	// a Tessera key is refused.
	env["TESSERAL_API_KEY"] = env["TESSERA_API_KEY"]
	p2, err := keyprovider.FromEnv(ctx, keyprovider.Tesseral,
		keyprovider.WithLookupEnv(func(name string) (string, bool) { v, ok := env[name]; return v, ok }))
	require.NoError(t, err)
	defer p2.Close()
	_, err = p2.Fetch(ctx)
	assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)

	// Without credentials the reference cannot be opened.
	delete(env, onepassword.EnvConnectHost)
	delete(env, onepassword.EnvConnectToken)
	_, err = keyprovider.FromEnv(ctx, keyprovider.Tessera,
		keyprovider.WithLookupEnv(func(name string) (string, bool) { v, ok := env[name]; return v, ok }))
	assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
}
