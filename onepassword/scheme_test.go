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
	assert.Contains(t, keyprovider.Schemes(), onepassword.Scheme, "importing onepassword registers op://")
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
