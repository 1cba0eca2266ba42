package onepassword

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
)

// echoSecrets fails every Resolve with a message of its choosing, as the
// SDK's core would repeat a server's answer.
type echoSecrets struct{ msg string }

func (e echoSecrets) Resolve(context.Context, string) (string, error) { return "", errors.New(e.msg) }

// TestSDKErrorsAreScrubbedOfTheServiceAccountToken: the Provider FromEnv
// assembles holds the service account token, and its errors go through
// the one scrubbing function.
func TestSDKErrorsAreScrubbedOfTheServiceAccountToken(t *testing.T) {
	const (
		token = "ops_eyJzaWduSW5BZGRyZXNzIjoibXkuMXBhc3N3b3JkLmNvbSJ9"
		key   = "sk-tessera-echoedBySDK0123456789"
	)
	backend := &sdkBackend{r: echoSecrets{"error sending request: token " + token + " key " + key}}
	p, err := newProvider(context.Background(), backend, "op://vault/item/field", Options{}, redact.NewSecret(token))
	require.NoError(t, err)
	_, err = p.Fetch(context.Background())
	require.ErrorIs(t, err, keyprovider.ErrUnavailable)
	assert.NotContains(t, err.Error(), token)
	assert.NotContains(t, err.Error(), key)
	assert.Contains(t, err.Error(), "error sending request: token …")
}
