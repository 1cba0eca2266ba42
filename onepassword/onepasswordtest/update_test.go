package onepasswordtest_test

import (
	"bytes"
	"net/http"
	"testing"

	op "github.com/1Password/connect-sdk-go/onepassword"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

func TestUpdateItemPutBumpsVersionAndConflicts(t *testing.T) {
	srv := onepasswordtest.NewServer(t)
	vid := srv.AddVault("prod")
	item, err := srv.PutItem(vid, op.Item{Title: "t", Fields: []*op.ItemField{{ID: "f", Label: "f", Value: "one"}}})
	require.NoError(t, err)
	c := srv.Client().Client()

	item.Fields[0].Value = "two"
	out, err := c.UpdateItem(&item, vid)
	require.NoError(t, err)
	assert.Equal(t, 2, out.Version)
	assert.Equal(t, "two", out.Fields[0].Value)

	item.Fields[0].Value = "stale" // still version 1
	_, err = c.UpdateItem(&item, vid)
	var e *op.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, http.StatusConflict, e.StatusCode)
	got, err := c.GetItemByUUID(item.ID, vid)
	require.NoError(t, err)
	assert.Equal(t, "two", got.Fields[0].Value, "a conflict changes nothing")
	assert.Equal(t, 2, srv.Requests(onepasswordtest.RouteUpdateItem))
}

func TestUpdateItemPatch(t *testing.T) {
	srv := onepasswordtest.NewServer(t)
	vid := srv.AddVault("prod")
	item, err := srv.PutItem(vid, op.Item{Title: "t", Fields: []*op.ItemField{{ID: "f", Label: "f", Value: "one"}}})
	require.NoError(t, err)
	patch := `[{"op":"replace","path":"/fields/f/value","value":"two"},{"op":"add","path":"/fields","value":{"label":"g","value":"x"}}]`
	req, err := http.NewRequest(http.MethodPatch, srv.URL+"/v1/vaults/"+vid+"/items/"+item.ID, bytes.NewBufferString(patch))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got, err := srv.Client().GetItemByUUID(item.ID, vid)
	require.NoError(t, err)
	assert.Equal(t, 2, got.Version)
	require.Len(t, got.Fields, 2)
	assert.Equal(t, "two", got.Fields[0].Value)
	assert.Equal(t, "g", got.Fields[1].Label)

	req, err = http.NewRequest(http.MethodPatch, srv.URL+"/v1/vaults/"+vid+"/items/"+item.ID, bytes.NewBufferString(`[{"op":"move","path":"/x"}]`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}
