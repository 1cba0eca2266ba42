package standin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/standin"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func do(t *testing.T, method, url, auth, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(raw, &got), "body %s", raw)
	return resp.StatusCode, got
}

func TestAcceptsOnlyTheCurrentKey(t *testing.T) {
	oldKey, newKey := standin.NewKey(keyprovider.Tessera), standin.NewKey(keyprovider.Tessera)
	srv := standin.Start(oldKey)
	defer srv.Close()
	emb := srv.BaseURL() + "/embeddings"
	body := `{"model":"Qwen/Qwen3-Embedding-8B","input":"hello"}`

	tests := []struct {
		name   string
		rotate bool
		auth   string
		want   int
	}{
		{"current key", false, "Bearer " + oldKey, http.StatusOK},
		{"no header", false, "", http.StatusUnauthorized},
		{"wrong scheme", false, "Basic " + oldKey, http.StatusUnauthorized},
		{"empty bearer", false, "Bearer ", http.StatusUnauthorized},
		{"other key", false, "Bearer " + newKey, http.StatusUnauthorized},
		{"old key after rotation", true, "Bearer " + oldKey, http.StatusUnauthorized},
		{"new key after rotation", true, "Bearer " + newKey, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rotate {
				srv.Rotate(newKey)
			}
			got, resp := do(t, http.MethodPost, emb, tc.auth, body)
			assert.Equal(t, tc.want, got)
			if got == http.StatusUnauthorized {
				errObj, _ := resp["error"].(map[string]any)
				assert.Equal(t, "invalid_api_key", errObj["code"])
			}
		})
	}
	st := srv.Stats()
	assert.Equal(t, 2, st.Accepted)
	assert.Equal(t, 5, st.Rejected)
	assert.Equal(t, keyprovider.NewKey(newKey, "").Fingerprint(), st.LastAccepted)
}

func TestEmbeddings(t *testing.T) {
	key := standin.NewKey(keyprovider.Tessera)
	srv := standin.Start(key)
	defer srv.Close()
	emb := srv.BaseURL() + "/embeddings"

	tests := []struct {
		name     string
		body     string
		wantCode int
		wantN    int
	}{
		{"one string", `{"model":"m","input":"hello world"}`, http.StatusOK, 1},
		{"array", `{"model":"m","input":["a","b","c"]}`, http.StatusOK, 3},
		{"empty array", `{"model":"m","input":[]}`, http.StatusBadRequest, 0},
		{"no model", `{"input":"x"}`, http.StatusBadRequest, 0},
		{"number input", `{"model":"m","input":3}`, http.StatusBadRequest, 0},
		{"not json", `hello`, http.StatusBadRequest, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, resp := do(t, http.MethodPost, emb, "Bearer "+key, tc.body)
			require.Equal(t, tc.wantCode, code, "%v", resp)
			if tc.wantCode != http.StatusOK {
				return
			}
			data := resp["data"].([]any)
			require.Len(t, data, tc.wantN)
			first := data[0].(map[string]any)
			assert.Len(t, first["embedding"], standin.Dimensions)
			assert.Equal(t, "list", resp["object"])
			assert.Equal(t, "m", resp["model"])
		})
	}

	_, a := do(t, http.MethodPost, emb, "Bearer "+key, `{"model":"m","input":"same"}`)
	_, b := do(t, http.MethodPost, emb, "Bearer "+key, `{"model":"m","input":"same"}`)
	assert.Equal(t, a["data"], b["data"], "embeddings are deterministic")
}

func TestOrganizations(t *testing.T) {
	key := standin.NewKey(keyprovider.Tesseral)
	srv := standin.Start(key)
	defer srv.Close()

	code, resp := do(t, http.MethodGet, srv.BaseURL()+"/organizations", "Bearer "+key, "")
	require.Equal(t, http.StatusOK, code)
	assert.Len(t, resp["organizations"], len(standin.Organizations))

	code, resp = do(t, http.MethodGet, srv.BaseURL()+"/organizations", "Bearer tesseral_secret_key_wrong", "")
	require.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, "unauthenticated", resp["code"])
}

func TestServiceAndNewKey(t *testing.T) {
	srv := standin.Start("x")
	defer srv.Close()
	svc := srv.Service(keyprovider.Tessera)
	assert.Equal(t, srv.BaseURL(), svc.BaseURL)
	assert.Equal(t, keyprovider.Tessera.EnvVar, svc.EnvVar)
	assert.True(t, strings.HasPrefix(svc.BaseURL, "http://127.0.0.1:"))

	k1, k2 := standin.NewKey(keyprovider.Tesseral), standin.NewKey(keyprovider.Tesseral)
	assert.NotEqual(t, k1, k2)
	assert.NoError(t, keyprovider.Tesseral.Validate(k1))
}
