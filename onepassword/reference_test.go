package onepassword_test

import (
	"context"
	"errors"
	"testing"

	sdk "github.com/1password/onepassword-sdk-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/onepassword"
	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

// These tests run the real SDK's reference parser, offline.

func TestValidReferencesAreAccepted(t *testing.T) {
	for _, ref := range []string{
		"op://vault/item/field",
		"op://Prod Vault/Tessera API/credential",
		"op://prod/tessera/api/credential",
		"op://abcdefghijklmnopqrstuvwxyz/0123456789abcdefghijklmnop/credential",
		"op://prod/tessera-key_2.0/credential",
	} {
		t.Run(ref, func(t *testing.T) {
			p, err := onepassword.New(onepasswordtest.NewSecrets(), ref)
			require.NoError(t, err)
			assert.Equal(t, ref, p.Ref())
			assert.Equal(t, "sdk", p.Mode())
		})
	}
}

func TestInvalidReferencesQuoteTheSDKsReason(t *testing.T) {
	for _, tc := range []struct{ ref, reason string }{
		{"vault/item/field", `not prefixed with "op://"`},
		{"https://vault/item/field", `not prefixed with "op://"`},
		{"op://vault/item", "invalid format"},
		{"op://vault", "invalid format"},
		{"op://a/b/c/d/e", "invalid format"},
		{"op://vault/item/field?attribute=colour", "invalid query parameter value"},
		{"op://vault/item/field?colour=red", "invalid query parameter key"},
		{"op://vault/it*em/field", "invalid character"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := onepassword.New(onepasswordtest.NewSecrets(), tc.ref)
			require.Error(t, err)
			assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
			var re *onepassword.ReferenceError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, tc.ref, re.Ref)
			assert.Contains(t, re.Reason, tc.reason)
			// The reason is the SDK's own, word for word.
			sdkErr := sdk.Secrets.ValidateSecretReference(context.Background(), tc.ref)
			require.Error(t, sdkErr)
			assert.Contains(t, sdkErr.Error(), re.Reason)
			var kerr *keyprovider.Error
			require.ErrorAs(t, err, &kerr)
			assert.Equal(t, "onepassword", kerr.Provider)
		})
	}
}

func TestConstructorsRefuseNilClientsAndEmptyReferences(t *testing.T) {
	_, err := onepassword.New(nil, "op://v/i/f")
	assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
	_, err = onepassword.NewConnect(nil, "op://v/i/f")
	assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
	_, err = onepassword.New(onepasswordtest.NewSecrets(), "  ")
	assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
}

func TestPreloadHonoursItsContextAndIsIdempotent(t *testing.T) {
	// TestMain loaded the core; later calls return at once, even with a
	// context that is already done.
	require.NoError(t, onepassword.Preload(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := onepassword.Preload(ctx)
	if err != nil {
		assert.True(t, errors.Is(err, context.Canceled), "a loaded core may still race a done context: %v", err)
	}
}

func TestMalformedServiceAccountTokensGiveClearErrors(t *testing.T) {
	for _, tc := range []struct{ token, reason string }{
		{"garbage-token-value", "invalid format"},
		{"ops_not-base64!!", "base64 decoding failed"},
		{"ops_eyJmb28iOiJiYXIifQ==", "service account token"},
	} {
		t.Run(tc.token, func(t *testing.T) {
			env := map[string]string{onepassword.EnvServiceAccountToken: tc.token}
			_, err := onepassword.FromEnv(context.Background(), "op://prod/tessera/credential", onepassword.WithLookupEnv(lookup(env)))
			require.Error(t, err)
			assert.ErrorIs(t, err, keyprovider.ErrPermission)
			assert.Contains(t, err.Error(), tc.reason)
			assert.NotContains(t, err.Error(), tc.token)
		})
	}
}

func TestFromEnvReportsMissingCredentials(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"none":                {},
		"blank token":         {onepassword.EnvServiceAccountToken: "  "},
		"host without token":  {onepassword.EnvConnectHost: "http://connect:8080"},
		"token without host":  {onepassword.EnvConnectToken: "some-connect-token"},
		"host is not a URL":   {onepassword.EnvConnectHost: "connect:8080", onepassword.EnvConnectToken: "some-connect-token"},
		"host has no address": {onepassword.EnvConnectHost: "https://", onepassword.EnvConnectToken: "some-connect-token"},
		"host with userinfo":  {onepassword.EnvConnectHost: "https://op:some-connect-token@connect", onepassword.EnvConnectToken: "some-connect-token"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := onepassword.FromEnv(context.Background(), "op://prod/tessera/credential", onepassword.WithLookupEnv(lookup(env)))
			require.Error(t, err)
			assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
			assert.NotContains(t, err.Error(), "some-connect-token")
		})
	}
}

func TestFromEnvChecksTheReferenceBeforeTheToken(t *testing.T) {
	env := map[string]string{onepassword.EnvServiceAccountToken: "garbage-token-value"}
	_, err := onepassword.FromEnv(context.Background(), "op://prod/tessera", onepassword.WithLookupEnv(lookup(env)))
	var re *onepassword.ReferenceError
	require.ErrorAs(t, err, &re)
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) { v, ok := env[name]; return v, ok }
}
