package vault_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/kubernetes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider/keyprovidertest"
	"github.com/keyprovider/keyprovider/vault"
)

// serviceAccountJWT returns a signed service account token with the claims
// Vault's Kubernetes auth reads (Vault asks the TokenReview API, not the
// signature, whether it is valid).
func serviceAccountJWT(t *testing.T) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	head := enc(map[string]string{"alg": "ES256", "typ": "JWT"})
	body := enc(map[string]any{
		"iss":                                    "kubernetes/serviceaccount",
		"sub":                                    "system:serviceaccount:default:app",
		"kubernetes.io/serviceaccount/namespace": "default",
		"kubernetes.io/serviceaccount/service-account.name": "app",
		"kubernetes.io/serviceaccount/service-account.uid":  "uid-app",
	})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(head + "." + body))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	require.NoError(t, err)
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// tokenReview is a stand-in for the Kubernetes TokenReview API that accepts
// one token as the "app" service account of namespace "default".
func tokenReview(t *testing.T, jwt string) (*httptest.Server, *atomic.Int64) {
	var reviews atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Spec struct {
				Token string `json:"token"`
			} `json:"spec"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		reviews.Add(1)
		status := map[string]any{"authenticated": false}
		if req.Spec.Token == jwt {
			status = map[string]any{"authenticated": true, "user": map[string]any{
				"username": "system:serviceaccount:default:app", "uid": "uid-app",
				"groups": []string{"system:serviceaccounts"},
			}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status,
		})
	}))
	t.Cleanup(srv.Close)
	return srv, &reviews
}

func TestKubernetesLogin(t *testing.T) {
	root := devClient(t)
	mount := kvMount(t, root, "2")
	put2(t, root, mount, "app", map[string]any{"api_key": keyprovidertest.KeyA})
	jwt := serviceAccountJWT(t)
	k8s, reviews := tokenReview(t, jwt)

	authPath := unique("k8s-")
	require.NoError(t, root.Sys().EnableAuthWithOptions(authPath, &api.EnableAuthOptions{Type: "kubernetes"}))
	t.Cleanup(func() { _ = root.Sys().DisableAuth(authPath) })
	_, err := root.Logical().Write("auth/"+authPath+"/config", map[string]any{
		"kubernetes_host": k8s.URL, "disable_local_ca_jwt": true, "token_reviewer_jwt": "reviewer",
	})
	require.NoError(t, err)
	policy := unique("read-")
	require.NoError(t, root.Sys().PutPolicy(policy, `path "`+mount+`/data/*" { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }`))
	_, err = root.Logical().Write("auth/"+authPath+"/role/app", map[string]any{
		"bound_service_account_names": "app", "bound_service_account_namespaces": "default",
		"token_policies": policy, "token_ttl": "1h",
	})
	require.NoError(t, err)

	login, err := kubernetes.NewKubernetesAuth("app", kubernetes.WithServiceAccountToken(jwt), kubernetes.WithMountPath(authPath))
	require.NoError(t, err)
	c, err := root.Clone()
	require.NoError(t, err)
	c.ClearToken()
	p, err := vault.New(c, mount+"/app", vault.WithAuth(login))
	require.NoError(t, err)
	defer p.Close()
	k, err := p.Fetch(context.Background())
	require.NoError(t, err)
	assertKey(t, keyprovidertest.KeyA, k)
	assert.GreaterOrEqual(t, reviews.Load(), int64(1), "Vault asked the TokenReview API")
	assert.NotEmpty(t, c.Token())
}
