package main

import (
	"context"
	"io"
	"net/http"
	"testing"

	op "github.com/1Password/connect-sdk-go/onepassword"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest/standin"
	"github.com/keyprovider/keyprovider/onepassword"
	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
	"github.com/keyprovider/keyprovider/rotate"
)

type opFixture struct {
	srv            *onepasswordtest.Server
	api            *standin.Server
	vaultID        string
	item           op.Item
	env            map[string]string
	oldKey, newKey string
}

func newOPFixture(t *testing.T) *opFixture {
	t.Helper()
	f := &opFixture{srv: onepasswordtest.NewServer(t), oldKey: standin.NewKey(keyprovider.Tessera), newKey: standin.NewKey(keyprovider.Tessera)}
	f.api = standin.New(t, standin.WithKeys(f.oldKey, f.newKey))
	f.vaultID = f.srv.AddVault("prod")
	var err error
	f.item, err = f.srv.PutItem(f.vaultID, op.Item{Title: "tessera", Category: op.ApiCredential,
		Fields: []*op.ItemField{{ID: "credential", Label: "credential", Type: op.FieldTypeConcealed, Value: f.oldKey}}})
	require.NoError(t, err)
	f.env = map[string]string{
		"TESSERA_API_KEY":  "op://prod/tessera/credential",
		"TESSERA_BASE_URL": f.api.BaseURL(),
		"OP_CONNECT_HOST":  f.srv.URL,
		"OP_CONNECT_TOKEN": f.srv.Token,
	}
	return f
}

func (f *opFixture) field(t *testing.T, label string) string {
	t.Helper()
	it, err := f.srv.Client().GetItemByUUID(f.item.ID, f.vaultID)
	require.NoError(t, err)
	for _, fl := range it.Fields {
		if fl.Label == label {
			return fl.Value
		}
	}
	return ""
}

func TestRotateOnePasswordConnectWhileSourceReads(t *testing.T) {
	f := newOPFixture(t)
	ctx := context.Background()
	p, err := onepassword.NewConnect(f.srv.Client(), "op://prod/tessera/credential", onepassword.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	src, err := rotate.New(p, rotate.WithLogger(quietLogger()))
	require.NoError(t, err)
	defer src.Close()
	svc := f.api.Service(keyprovider.Tessera)
	client := keyprovider.NewClient(src, keyprovider.WithAllowedHosts(svc.Host()))
	request := func(step string) error {
		_, err := src.Refresh(ctx)
		require.NoError(t, err, "refresh after %s", step)
		resp, err := client.Get(svc.BaseURL + "/models")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "a request after %s", step)
		return nil
	}
	got := runRotateTest(t, f.env, f.newKey, testRotateDeps(request), "--service", "tessera", "--json", "--wait", "5s")
	require.Equal(t, exitOK, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	assertNoSecret(t, got.stdout+got.stderr, f.newKey, f.oldKey, f.srv.Token)
	assert.Equal(t, f.newKey, f.field(t, "credential"))
	assert.Equal(t, f.oldKey, f.field(t, "credential (previous)"), "the old key is kept in a second field")
	k, err := src.Refresh(ctx)
	require.NoError(t, err)
	assert.Equal(t, standin.Fingerprint(f.newKey), k.Fingerprint(), "the Source picked up the new key")
	assert.Equal(t, "2", k.Version())
	require.NoError(t, request("the rotation"))
}

func TestRotateOnePasswordVerifyRefused(t *testing.T) {
	f := newOPFixture(t)
	f.api.Revoke(f.newKey)
	got := runRotateTest(t, f.env, f.newKey, testRotateDeps(nil), "--service", "tessera")
	require.Equal(t, exitFail, got.code, got.stdout)
	assert.Contains(t, got.stdout, "nothing was written to 1Password")
	assert.Equal(t, f.oldKey, f.field(t, "credential"))
	assert.Equal(t, 0, f.srv.Requests(onepasswordtest.RouteUpdateItem), "nothing written")
	assertNoSecret(t, got.stdout+got.stderr, f.newKey, f.oldKey)
}
