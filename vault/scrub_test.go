package vault_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest"
	"github.com/keyprovider/keyprovider/vault"
)

const (
	loginToken   = "hvs.LOGIN-token-from-the-auth-method"
	tesseralKey  = "tesseral_secret_key_echoedBack123"
	loginPath    = "/v1/auth/fake/login"
	echoTemplate = "permission check failed for token %s; the secret holds %s and %s"
)

// fakeLogin is an api.AuthMethod logging in at auth/fake/login.
type fakeLogin struct{}

func (l fakeLogin) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	return c.Logical().WriteWithContext(ctx, strings.TrimPrefix(loginPath, "/v1/"), nil)
}

// answerLogin answers the fake login with loginToken.
func answerLogin(w http.ResponseWriter, r *http.Request, renewable bool) bool {
	if r.URL.Path != loginPath {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"auth":{"client_token":%q,"renewable":%t,"lease_duration":3600,"policies":["default"]}}`, loginToken, renewable)
	return true
}

// TestServerEchoesAreScrubbed: a server (or a proxy before it) that quotes
// the request's token and a key in its error never puts them in Fetch's
// error, whatever the status and body shape, and the ResponseError stays
// reachable.
func TestServerEchoesAreScrubbed(t *testing.T) {
	for name, tc := range map[string]struct {
		status int
		json   bool
		auth   bool
		want   error
	}{
		"500 JSON":         {http.StatusInternalServerError, true, false, keyprovider.ErrUnavailable},
		"403 JSON":         {http.StatusForbidden, true, false, keyprovider.ErrPermission},
		"400 JSON":         {http.StatusBadRequest, true, false, keyprovider.ErrInvalidKey},
		"502 raw":          {http.StatusBadGateway, false, false, keyprovider.ErrUnavailable},
		"login token, 500": {http.StatusInternalServerError, true, true, keyprovider.ErrUnavailable},
		"login token, 403": {http.StatusForbidden, true, true, keyprovider.ErrPermission},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeVault(t, keyprovidertest.KeyA)
			f.setAnswer(func(w http.ResponseWriter, r *http.Request) bool {
				if answerLogin(w, r, false) {
					return true
				}
				msg := fmt.Sprintf(echoTemplate, r.Header.Get("X-Vault-Token"), keyprovidertest.KeyB, tesseralKey)
				if tc.json {
					w.Header().Set("Content-Type", "application/json")
					msg = fmt.Sprintf(`{"errors":[%q]}`, msg)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(msg))
				return true
			})
			c := fakeClient(t, f.URL(), injectedToken)
			opts := []vault.Option{vault.WithMount("secret"), vault.WithKVVersion(2)}
			if tc.auth {
				opts = append(opts, vault.WithAuth(fakeLogin{}))
			}
			p, err := vault.New(c, "app", opts...)
			require.NoError(t, err)
			defer p.Close()
			_, err = p.Fetch(context.Background())
			require.ErrorIs(t, err, tc.want)
			msg := err.Error()
			assertNotLeaked(t, msg, injectedToken, loginToken, keyprovidertest.KeyB, tesseralKey)
			assert.Contains(t, msg, "permission check failed for token", "the server's words are kept")
			var re *api.ResponseError
			require.True(t, errors.As(err, &re), "the client's ResponseError stays reachable")
			assert.Equal(t, tc.status, re.StatusCode)
			if tc.auth {
				assert.True(t, slices.Contains(f.tokensSeen(), loginToken), "the login's token was the one echoed")
			}
		})
	}
}
