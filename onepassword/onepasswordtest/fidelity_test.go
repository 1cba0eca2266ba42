package onepasswordtest_test

import (
	"encoding/base32"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	op "github.com/1Password/connect-sdk-go/onepassword"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

// get sends GET path with token and returns the status and body.
func get(t *testing.T, srv *onepasswordtest.Server, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// Paths are answered as Connect answers them: the token first, a trailing
// slash accepted, malformed IDs 400, unknown ones 404.
func TestServerPathsAsConnect(t *testing.T) {
	srv := onepasswordtest.NewServer(t)
	prod := srv.AddVault("prod")
	it, err := srv.PutItem(prod, op.Item{Title: "tessera"})
	require.NoError(t, err)
	filter := "?filter=" + url.QueryEscape(`title eq "tessera"`)
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/v1/vaults/", srv.Token, 200},
		{"/v1/vaults/" + prod + "/items/" + filter, srv.Token, 200},
		{"/v1/vaults/" + prod + "/items/" + it.ID + "/", srv.Token, 200},
		{"/v1/vaults/", "bad", 401},
		{"/v1/vaults/" + prod + "/items/" + filter, "bad", 401},
		{"/v1/nothing/here", "bad", 401},
		{"/v1/nothing/here", srv.Token, 404},
		{"/v1/vaults/not-a-uuid", srv.Token, 400},
		{"/v1/vaults/" + prod + "/items/not-a-uuid", srv.Token, 400},
		{"/v1/vaults/" + onepasswordtest.NewID(), srv.Token, 404},
		{"/v1/vaults/" + prod + "/items/" + onepasswordtest.NewID(), srv.Token, 404},
		{"/heartbeat", "", 200},
		{"/health", "", 200},
	} {
		got, body := get(t, srv, tc.path, tc.token)
		assert.Equal(t, tc.want, got, "%s (token %s): %s", tc.path, tc.token, body)
	}
	_, body := get(t, srv, "/v1/vaults/"+prod+"/items/"+filter, srv.Token)
	var items []op.Item
	require.NoError(t, json.Unmarshal([]byte(body), &items))
	require.Len(t, items, 1)
	assert.Equal(t, it.ID, items[0].ID)
}

// The filters the Connect API reference documents are served.
func TestServerFilters(t *testing.T) {
	srv := onepasswordtest.NewServer(t)
	prod := srv.AddVault("prod")
	srv.AddVault("production")
	for _, title := range []string{"Tessera key", "tesseral", "other"} {
		_, err := srv.PutItem(prod, op.Item{Title: title})
		require.NoError(t, err)
	}
	count := func(path, filter string) int {
		code, body := get(t, srv, path+"?filter="+url.QueryEscape(filter), srv.Token)
		require.Equal(t, http.StatusOK, code, body)
		var list []json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(body), &list))
		return len(list)
	}
	assert.Equal(t, 1, count("/v1/vaults", `name eq "prod"`))
	assert.Equal(t, 1, count("/v1/vaults", `title eq "production"`), "what the SDKs send")
	items := "/v1/vaults/" + prod + "/items"
	assert.Equal(t, 1, count(items, `title eq "tesseral"`))
	assert.Equal(t, 2, count(items, `title co "TESS"`))
	assert.Equal(t, 0, count(items, `title eq "tess"`))
	code, _ := get(t, srv, items+"?filter="+url.QueryEscape(`category eq "LOGIN"`), srv.Token)
	assert.Equal(t, http.StatusBadRequest, code)
}

// createdAt/updatedAt, versions and item counts are computed as Connect
// computes them, on the server's clock.
func TestServerComputedFields(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tick := func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Minute); return now }
	srv := onepasswordtest.NewServer(t, onepasswordtest.WithClock(tick))
	c := srv.Client().Client()
	prod := srv.AddVault("prod")
	v0, err := c.GetVaultByUUID(prod)
	require.NoError(t, err)
	assert.Equal(t, 0, v0.Items)
	item, err := srv.PutItem(prod, op.Item{Title: "k", Fields: []*op.ItemField{{ID: "credential", Label: "credential", Value: "v1"}}})
	require.NoError(t, err)
	require.NoError(t, srv.SetField(prod, item.ID, "credential", "v2"))
	got, err := c.GetItemByUUID(item.ID, prod)
	require.NoError(t, err)
	assert.Equal(t, 2, got.Version)
	assert.True(t, got.UpdatedAt.After(got.CreatedAt), "updatedAt moved on the update: %v %v", got.CreatedAt, got.UpdatedAt)
	assert.Equal(t, item.CreatedAt, got.CreatedAt)
	v1, err := c.GetVaultByUUID(prod)
	require.NoError(t, err)
	assert.Equal(t, 1, v1.Items)
	assert.Greater(t, v1.ContentVersion, v0.ContentVersion)
	assert.True(t, v1.UpdatedAt.After(v0.UpdatedAt))
}

// OTP fields carry the current code, RFC 6238's test vectors included.
func TestServerTOTP(t *testing.T) {
	srv := onepasswordtest.NewServer(t, onepasswordtest.WithClock(func() time.Time { return time.Unix(1111111109, 0) }))
	prod := srv.AddVault("prod")
	sha256Key := base32.StdEncoding.EncodeToString([]byte("12345678901234567890123456789012"))
	item, err := srv.PutItem(prod, op.Item{Title: "otp", Fields: []*op.ItemField{
		{ID: "a", Type: op.FieldTypeOTP, Value: rfcSecret},
		{ID: "b", Type: op.FieldTypeOTP, Value: "otpauth://totp/x?secret=" + strings.TrimRight(sha256Key, "=") + "&algorithm=SHA256&digits=8"},
		{ID: "c", Type: op.FieldTypeOTP, Value: "not base32!"},
	}})
	require.NoError(t, err)
	got, err := srv.Client().Client().GetItemByUUID(item.ID, prod)
	require.NoError(t, err)
	assert.Equal(t, "081804", got.Fields[0].TOTP)
	assert.Equal(t, "68084774", got.Fields[1].TOTP)
	assert.Empty(t, got.Fields[2].TOTP, "no secret, no code")
}

// A chosen address and token are used; an address in use is an error.
func TestServerChosenAddressAndToken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	srv := onepasswordtest.NewServer(t, onepasswordtest.WithAddr(addr), onepasswordtest.WithToken("chosen-token"))
	assert.Equal(t, "http://"+addr, srv.URL)
	code, _ := get(t, srv, "/v1/vaults", "chosen-token")
	assert.Equal(t, http.StatusOK, code)
	_, err = onepasswordtest.New(onepasswordtest.WithAddr(addr))
	assert.ErrorContains(t, err, "address already in use")
}

func post(t *testing.T, srv *onepasswordtest.Server, cmd, body string) int {
	t.Helper()
	resp, err := http.Post(srv.URL+onepasswordtest.ControlPath+cmd, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// Faults, denial, revocation and rotation are reachable over HTTP.
func TestServerControlEndpoints(t *testing.T) {
	srv := onepasswordtest.NewServer(t)
	prod := srv.AddVault("prod")
	item, err := srv.PutItem(prod, op.Item{Title: "k", Fields: []*op.ItemField{{ID: "credential", Label: "credential", Value: "v1"}}})
	require.NoError(t, err)
	path := "/v1/vaults/" + prod + "/items/" + item.ID

	require.Equal(t, 200, post(t, srv, "fail", `{"status":503,"count":2}`))
	for range 2 {
		code, _ := get(t, srv, path, srv.Token)
		assert.Equal(t, 503, code)
	}
	require.Equal(t, 200, post(t, srv, "rotate", `{"vault":"`+prod+`","item":"`+item.ID+`","field":"credential","value":"v2"}`))
	code, body := get(t, srv, path, srv.Token)
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `"value":"v2"`)
	post(t, srv, "deny", `{"vault":"`+prod+`","denied":true}`)
	code, _ = get(t, srv, path, srv.Token)
	assert.Equal(t, 403, code)
	post(t, srv, "deny", `{"vault":"`+prod+`","denied":false}`)
	post(t, srv, "revoke", `{"revoked":true}`)
	code, _ = get(t, srv, path, srv.Token)
	assert.Equal(t, 401, code)
	post(t, srv, "revoke", `{"revoked":false}`)
	post(t, srv, "fail", `{"status":500,"count":-1}`)
	code, _ = get(t, srv, path, srv.Token)
	assert.Equal(t, 500, code)
	post(t, srv, "heal", ``)
	code, _ = get(t, srv, path, srv.Token)
	assert.Equal(t, 200, code)
	assert.Equal(t, 400, post(t, srv, "fail", `{"status":200}`))
	assert.Equal(t, 404, post(t, srv, "rotate", `{"vault":"`+prod+`","item":"`+item.ID+`","field":"nope"}`))
	assert.Equal(t, 404, post(t, srv, "nowhere", `{}`))
	code, body = get(t, srv, onepasswordtest.ControlPath+"requests", "")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `"GetItem":7`)
}
