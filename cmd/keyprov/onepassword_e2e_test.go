package main

import (
	"testing"

	op "github.com/1Password/connect-sdk-go/onepassword"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

// keyprov resolves op:// references through a Connect server named by
// OP_CONNECT_HOST and OP_CONNECT_TOKEN, as a pod in Kubernetes would.
func TestE2EOnePasswordConnectEmulator(t *testing.T) {
	srv := onepasswordtest.NewServer(t)
	vault := srv.AddVault("staging")
	_, err := srv.PutItem(vault, op.Item{Title: "tessera", Category: op.ApiCredential,
		Fields: []*op.ItemField{{ID: "credential", Label: "credential", Type: op.FieldTypeConcealed, Value: tesseraKey}}})
	require.NoError(t, err)
	env := map[string]string{
		"TESSERA_API_KEY":  "op://staging/tessera/credential",
		"TESSERAL_API_KEY": "op://staging/tesseral/credential",
		"OP_CONNECT_HOST":  srv.URL,
		"OP_CONNECT_TOKEN": srv.Token,
	}
	// The 1Password SDK's WebAssembly core loads in the child on the first
	// op:// reference: seconds alone, far more under -race beside other
	// test binaries. The per-key timeout leaves room for it, so that the
	// test judges resolution, not the machine's load.
	got := execKeyprov(t, env, "check", "--json", "--timeout", "2m")
	require.Equal(t, exitFail, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	r := parseJSONLines(t, got.stdout)
	require.Len(t, r, 2)
	byService := map[string]result{}
	for _, x := range r {
		byService[x.Service] = x
	}
	assert.Equal(t, fp(tesseraKey), byService["tessera"].Fingerprint)
	assert.Equal(t, "1", byService["tessera"].Version, "the item's version")
	assert.Equal(t, "not_found", byService["tesseral"].Kind)
	assertNoKey(t, got.stdout, got.stderr)
	assert.NotContains(t, got.stdout+got.stderr, srv.Token)
}
