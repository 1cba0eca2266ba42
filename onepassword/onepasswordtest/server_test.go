package onepasswordtest_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	op "github.com/1Password/connect-sdk-go/onepassword"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The emulator answers the real connect-sdk-go client as Connect does.
func TestServerServesConnectSDK(t *testing.T) {
	srv := onepasswordtest.NewServer(t)
	prod := srv.AddVault("prod")
	srv.AddVault("staging")
	item, err := srv.PutItem(prod, op.Item{Title: "tessera", Category: op.ApiCredential,
		Fields: []*op.ItemField{{ID: "credential", Label: "credential", Type: op.FieldTypeConcealed, Value: "v1"}}})
	require.NoError(t, err)
	assert.Equal(t, 1, item.Version)
	assert.Regexp(t, `^[a-z0-9]{26}$`, item.ID)
	c := srv.Client().Client()

	vaults, err := c.GetVaults()
	require.NoError(t, err)
	assert.Len(t, vaults, 2)
	byTitle, err := c.GetVaultsByTitle("prod")
	require.NoError(t, err)
	require.Len(t, byTitle, 1)
	assert.Equal(t, prod, byTitle[0].ID)
	v, err := c.GetVaultByUUID(prod)
	require.NoError(t, err)
	assert.Equal(t, "prod", v.Name)

	items, err := c.GetItemsByTitle("tessera", prod)
	require.NoError(t, err)
	require.Len(t, items, 1)
	assert.Equal(t, "v1", items[0].Fields[0].Value, "GetItemsByTitle fetches each summary in full")
	none, err := c.GetItemsByTitle("tesseral", prod)
	require.NoError(t, err)
	assert.Empty(t, none)

	require.NoError(t, srv.SetField(prod, item.ID, "credential", "v2"))
	got, err := c.GetItemByUUID(item.ID, prod)
	require.NoError(t, err)
	assert.Equal(t, 2, got.Version)
	assert.Equal(t, "v2", got.Fields[0].Value)
	assert.Equal(t, prod, got.Vault.ID)

	require.NoError(t, srv.DeleteItem(prod, item.ID))
	_, err = c.GetItemByUUID(item.ID, prod)
	var apiErr *op.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusNotFound, apiErr.StatusCode)

	assert.Equal(t, 2, srv.Requests(onepasswordtest.RouteListVaults), "one unfiltered list, one filtered")
	assert.Equal(t, 2, srv.Requests(onepasswordtest.RouteListItems))
	assert.Equal(t, 8, srv.Requests(""))
}

func TestServerChecksBearerToken(t *testing.T) {
	srv := onepasswordtest.NewServer(t)
	for name, header := range map[string]string{"none": "", "wrong": "Bearer nope", "not bearer": srv.Token} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/vaults", nil)
			require.NoError(t, err)
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		})
	}
	srv.RevokeToken()
	_, err := srv.Client().Client().GetVaults()
	var apiErr *op.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
}

func TestServerRefusesUnknownFilters(t *testing.T) {
	srv := onepasswordtest.NewServer(t)
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/vaults?filter="+url.QueryEscape(`name co "pro"`), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestServerDeniedVault(t *testing.T) {
	srv := onepasswordtest.NewServer(t)
	prod := srv.AddVault("prod")
	srv.Deny(prod, true)
	vaults, err := srv.Client().Client().GetVaults()
	require.NoError(t, err)
	assert.Empty(t, vaults, "a vault the token cannot access is not listed")
	_, err = srv.Client().Client().GetVaultByUUID(prod)
	var apiErr *op.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusForbidden, apiErr.StatusCode)
}

func TestServerFaults(t *testing.T) {
	srv := onepasswordtest.NewServer(t)
	c := srv.Client().Client()
	srv.FailNext(onepasswordtest.Fault{Status: 503}, onepasswordtest.Fault{Status: 429})
	statusOf := func(err error) int {
		var apiErr *op.Error
		if errors.As(err, &apiErr) {
			return apiErr.StatusCode
		}
		return 0
	}
	_, err := c.GetVaults()
	assert.Equal(t, 503, statusOf(err))
	_, err = c.GetVaults()
	assert.Equal(t, 429, statusOf(err))
	_, err = c.GetVaults()
	assert.NoError(t, err, "FailNext faults are used up")

	srv.FailAll(onepasswordtest.Fault{Status: 500})
	for range 3 {
		_, err = c.GetVaults()
		assert.Equal(t, 500, statusOf(err))
	}
	srv.Heal()
	_, err = c.GetVaults()
	assert.NoError(t, err)
	assert.Equal(t, 7, srv.Requests(onepasswordtest.RouteListVaults), "faults are counted")
}

func TestServerHangIsReleasedByClose(t *testing.T) {
	srv := onepasswordtest.Start()
	srv.FailAll(onepasswordtest.Fault{Hang: true})
	done := make(chan error, 1)
	go func() { _, err := srv.Client().Client().GetVaults(); done <- err }()
	select {
	case err := <-done:
		require.FailNow(t, "a hanging request returned", "%v", err)
	case <-time.After(50 * time.Millisecond):
	}
	srv.Close()
	select {
	case err := <-done:
		assert.Error(t, err)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "Close did not release the hanging request")
	}
	srv.Close() // idempotent
}

func TestResolverHonoursContext(t *testing.T) {
	r := onepasswordtest.NewSecrets()
	r.Set("op://v/i/f", "value")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Resolve(ctx, "op://v/i/f")
	assert.ErrorIs(t, err, context.Canceled)
	v, err := r.Resolve(context.Background(), "op://v/i/f")
	require.NoError(t, err)
	assert.Equal(t, "value", v)
	_, err = r.Resolve(context.Background(), "op://v/i/g")
	assert.ErrorIs(t, err, onepasswordtest.ErrNoItem)
	assert.Equal(t, 3, r.Calls())
}
