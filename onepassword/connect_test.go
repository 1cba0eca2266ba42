package onepassword_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	op "github.com/1Password/connect-sdk-go/onepassword"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/onepassword"
	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

// These tests drive the Connect emulator with the real connect-sdk-go client.

const (
	connectKey  = "sk-tessera-connectKey0000000001"
	connectKey2 = "sk-tessera-connectKey0000000002"
)

// apiItem is an API credential item with a top-level field "credential"
// and a section "Backup" holding a field "previous".
func apiItem(title, value string) op.Item {
	return op.Item{
		Title:    title,
		Category: op.ApiCredential,
		Sections: []*op.ItemSection{{ID: "sec0backup", Label: "Backup"}},
		Fields: []*op.ItemField{
			{ID: "credential", Label: "credential", Type: op.FieldTypeConcealed, Value: value},
			{ID: "notes", Label: "notesPlain", Type: op.FieldTypeString, Purpose: op.FieldPurposeNotes, Value: "owned by search"},
			{ID: "fld0backup", Label: "previous", Section: &op.ItemSection{ID: "sec0backup"}, Type: op.FieldTypeConcealed, Value: connectKey2},
		},
	}
}

type connectFixture struct {
	srv     *onepasswordtest.Server
	vaultID string
	item    op.Item
	ctx     context.Context
	t       *testing.T
}

func newConnectFixture(t *testing.T) *connectFixture {
	srv := onepasswordtest.NewServer(t)
	vid := srv.AddVault("prod")
	item, err := srv.PutItem(vid, apiItem("tessera", connectKey))
	require.NoError(t, err)
	return &connectFixture{srv: srv, vaultID: vid, item: item, ctx: context.Background(), t: t}
}

func (f *connectFixture) provider(ref string) *onepassword.Provider {
	f.t.Helper()
	p, err := onepassword.NewConnect(f.srv.Client(), ref, onepassword.WithService(keyprovider.Tessera))
	require.NoError(f.t, err)
	assert.Equal(f.t, "connect", p.Mode())
	return p
}

// fetchErr fetches, expects an error, and checks it leaks neither key nor
// token.
func (f *connectFixture) fetchErr(p *onepassword.Provider) error {
	f.t.Helper()
	k, err := p.Fetch(f.ctx)
	require.Error(f.t, err)
	assert.True(f.t, k.IsZero())
	for _, secret := range []string{connectKey, connectKey2, f.srv.Token} {
		assert.NotContains(f.t, err.Error(), secret)
	}
	var kerr *keyprovider.Error
	require.ErrorAs(f.t, err, &kerr)
	assert.Equal(f.t, "onepassword", kerr.Provider)
	return err
}

func TestConnectResolvesNamesAndIDs(t *testing.T) {
	f := newConnectFixture(t)
	for _, tc := range []struct{ ref, want string }{
		{"op://prod/tessera/credential", connectKey},
		{"op://prod/tessera/Previous", connectKey2}, // labels ignore case
		{"op://" + f.vaultID + "/tessera/credential", connectKey},
		{"op://prod/" + f.item.ID + "/credential", connectKey},
		{"op://" + f.vaultID + "/" + f.item.ID + "/credential", connectKey},
		{"op://prod/tessera/backup/previous", connectKey2},     // section by label
		{"op://prod/tessera/sec0backup/previous", connectKey2}, // section by ID
		{"op://prod/tessera/fld0backup", connectKey2},          // field by ID
	} {
		t.Run(tc.ref, func(t *testing.T) {
			k, err := f.provider(tc.ref).Fetch(f.ctx)
			require.NoError(t, err)
			assertKey(t, tc.want, k)
			assert.Equal(t, "1", k.Version(), "the key's version is the item's")
		})
	}
}

func TestConnectAmbiguousNamesAreErrors(t *testing.T) {
	f := newConnectFixture(t)
	_, err := f.srv.PutItem(f.vaultID, apiItem("tessera", connectKey2))
	require.NoError(t, err)
	f.srv.AddVault("twin")
	f.srv.AddVault("twin")

	for _, tc := range []struct {
		ref, what string
		count     int
	}{
		{"op://prod/tessera/credential", "item", 2},
		{"op://twin/tessera/credential", "vault", 2},
	} {
		err := f.fetchErr(f.provider(tc.ref))
		assert.ErrorIs(t, err, keyprovider.ErrNotFound)
		var amb *onepassword.AmbiguousError
		require.ErrorAs(t, err, &amb, tc.ref)
		assert.Equal(t, onepassword.AmbiguousError{What: tc.what, Name: "tessera", Count: tc.count}.What, amb.What)
		assert.Equal(t, tc.count, amb.Count)
	}

	// Within one item: two fields labelled alike.
	dup := apiItem("dup", connectKey)
	dup.Fields[0].ID, dup.Fields[2].Label = "fld0primary", "credential"
	_, err = f.srv.PutItem(f.vaultID, dup)
	require.NoError(t, err)
	err = f.fetchErr(f.provider("op://prod/dup/credential"))
	var amb *onepassword.AmbiguousError
	require.ErrorAs(t, err, &amb)
	assert.Equal(t, "field", amb.What)
}

func TestConnectUnknownNamesAreNotFound(t *testing.T) {
	f := newConnectFixture(t)
	for _, ref := range []string{
		"op://staging/tessera/credential",
		"op://prod/tesseral/credential",
		"op://prod/tessera/missing/credential",
		"op://prod/tessera/backup/credential", // not in that section
		"op://prod/tessera/password",
		"op://abcdefghijklmnopqrstuvwxyz/tessera/credential", // an ID no vault has
	} {
		t.Run(ref, func(t *testing.T) {
			err := f.fetchErr(f.provider(ref))
			assert.ErrorIs(t, err, keyprovider.ErrNotFound)
		})
	}
}

func TestConnectRefreshCostsOneRequest(t *testing.T) {
	f := newConnectFixture(t)
	p := f.provider("op://prod/tessera/credential")
	_, err := p.Fetch(f.ctx)
	require.NoError(t, err)
	first := f.srv.Requests("")
	assert.Equal(t, 3, first, "a first fetch by name: list vaults, list items, get item")
	for range 5 {
		_, err := p.Fetch(f.ctx)
		require.NoError(t, err)
	}
	assert.Equal(t, first+5, f.srv.Requests(""))
	assert.Equal(t, 1+5, f.srv.Requests(onepasswordtest.RouteGetItem))
}

func TestConnectFollowsRotationAndRecreation(t *testing.T) {
	f := newConnectFixture(t)
	p := f.provider("op://prod/tessera/credential")
	k, err := p.Fetch(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, "1", k.Version())

	require.NoError(t, f.srv.SetField(f.vaultID, f.item.ID, "credential", connectKey2))
	k, err = p.Fetch(f.ctx)
	require.NoError(t, err)
	assertKey(t, connectKey2, k)
	assert.Equal(t, "2", k.Version())

	// Rotation by replacement: a new item under the same title, the old one
	// deleted. The remembered ID is gone; the name finds the new item.
	require.NoError(t, f.srv.DeleteItem(f.vaultID, f.item.ID))
	assert.ErrorIs(t, f.fetchErr(p), keyprovider.ErrNotFound)
	_, err = f.srv.PutItem(f.vaultID, apiItem("tessera", connectKey))
	require.NoError(t, err)
	k, err = p.Fetch(f.ctx)
	require.NoError(t, err)
	assertKey(t, connectKey, k)
}

func TestConnectErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name   string
		breakS func(f *connectFixture)
		want   error
	}{
		{"revoked token", func(f *connectFixture) { f.srv.RevokeToken() }, keyprovider.ErrPermission},
		{"500", func(f *connectFixture) { f.srv.FailAll(onepasswordtest.Fault{Status: 500}) }, keyprovider.ErrUnavailable},
		{"503", func(f *connectFixture) { f.srv.FailAll(onepasswordtest.Fault{Status: 503}) }, keyprovider.ErrUnavailable},
		{"429", func(f *connectFixture) { f.srv.FailAll(onepasswordtest.Fault{Status: 429}) }, keyprovider.ErrUnavailable},
		{"server gone", func(f *connectFixture) { f.srv.Close() }, keyprovider.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, warm := range []bool{false, true} {
				t.Run(fmt.Sprintf("warm=%v", warm), func(t *testing.T) {
					f := newConnectFixture(t)
					p := f.provider("op://prod/tessera/credential")
					if warm { // IDs remembered: the failure hits GET item
						_, err := p.Fetch(f.ctx)
						require.NoError(t, err)
					}
					tc.breakS(f)
					assert.ErrorIs(t, f.fetchErr(p), tc.want)
				})
			}
		})
	}
}

// A vault the token cannot access is not listed, so by name it is not
// found; by ID, or once its ID is known, it is a permission error.
func TestConnectVaultWithoutAccess(t *testing.T) {
	f := newConnectFixture(t)
	f.srv.Deny(f.vaultID, true)
	assert.ErrorIs(t, f.fetchErr(f.provider("op://prod/tessera/credential")), keyprovider.ErrNotFound)
	assert.ErrorIs(t, f.fetchErr(f.provider("op://"+f.vaultID+"/tessera/credential")), keyprovider.ErrPermission)

	f.srv.Deny(f.vaultID, false)
	p := f.provider("op://prod/tessera/credential")
	_, err := p.Fetch(f.ctx)
	require.NoError(t, err)
	f.srv.Deny(f.vaultID, true)
	assert.ErrorIs(t, f.fetchErr(p), keyprovider.ErrPermission)
}

func TestConnectWrongTokenIsPermission(t *testing.T) {
	f := newConnectFixture(t)
	c, err := onepassword.NewConnectClient(f.srv.URL, "not-the-token")
	require.NoError(t, err)
	p, err := onepassword.NewConnect(c, "op://prod/tessera/credential")
	require.NoError(t, err)
	err = f.fetchErr(p)
	assert.ErrorIs(t, err, keyprovider.ErrPermission)
	assert.NotContains(t, err.Error(), "not-the-token")
}

func TestConnectRefusesAttributesItCannotServe(t *testing.T) {
	f := newConnectFixture(t)
	for _, attr := range []string{"otp", "totp"} {
		ref := "op://prod/tessera/credential?attribute=" + attr
		_, err := onepassword.New(onepasswordtest.NewSecrets(), ref)
		require.NoError(t, err, "the SDK serves %s", attr)
		_, err = onepassword.NewConnect(f.srv.Client(), ref)
		assert.ErrorIs(t, err, keyprovider.ErrInvalidKey, "Connect mode does not serve %s", attr)
	}
}

// connect-sdk-go takes no context: a hanging server must not hang Fetch,
// and abandoned requests are bounded to one per Provider.
func TestConnectHangingServerHonoursContext(t *testing.T) {
	f := newConnectFixture(t)
	p := f.provider("op://prod/tessera/credential")
	f.srv.FailAll(onepasswordtest.Fault{Hang: true})

	const callers = 5
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, errs[i] = p.Fetch(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	}
	assert.Equal(t, 1, f.srv.Requests(""), "one request in flight per Provider, however many callers time out")

	// Once the server answers, the Provider works again.
	f.srv.Heal()
	f.srv.Close() // releases the hanging request
	require.Eventually(t, func() bool {
		_, err := p.Fetch(context.Background())
		return errors.Is(err, keyprovider.ErrUnavailable)
	}, 5*time.Second, 10*time.Millisecond, "after the hung request ends, the next Fetch runs")
}

// FromEnv makes a Connect Provider from OP_CONNECT_HOST and OP_CONNECT_TOKEN,
// in preference to a service account token.
func TestFromEnvConnect(t *testing.T) {
	f := newConnectFixture(t)
	env := map[string]string{
		onepassword.EnvConnectHost:         f.srv.URL + "/",
		onepassword.EnvConnectToken:        f.srv.Token,
		onepassword.EnvServiceAccountToken: "ops_not-used",
	}
	p, err := onepassword.FromEnv(f.ctx, "op://prod/tessera/credential", onepassword.WithLookupEnv(lookup(env)), onepassword.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	assert.Equal(t, "connect", p.Mode())
	k, err := p.Fetch(f.ctx)
	require.NoError(t, err)
	assertKey(t, connectKey, k)
}

// A server whose error message quotes the token does not get it into our
// errors.
func TestConnectTokenNeverInErrors(t *testing.T) {
	const token = "connect-token-that-a-proxy-echoes"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, `{"status":502,"message":"upstream refused %s"}`, r.Header.Get("Authorization"))
	}))
	defer echo.Close()
	env := map[string]string{onepassword.EnvConnectHost: echo.URL, onepassword.EnvConnectToken: token}
	p, err := onepassword.FromEnv(context.Background(), "op://prod/tessera/credential", onepassword.WithLookupEnv(lookup(env)))
	require.NoError(t, err)
	_, err = p.Fetch(context.Background())
	require.Error(t, err)
	assert.ErrorIs(t, err, keyprovider.ErrUnavailable)
	assert.NotContains(t, err.Error(), token)
	assert.Contains(t, err.Error(), "upstream refused Bearer …", "the token is shown by its fingerprint")
}

// A Provider holds a client, which holds the token: printing it shows
// neither.
func TestProviderPrintsNoToken(t *testing.T) {
	f := newConnectFixture(t)
	env := map[string]string{onepassword.EnvConnectHost: f.srv.URL, onepassword.EnvConnectToken: f.srv.Token}
	p, err := onepassword.FromEnv(f.ctx, "op://prod/tessera/credential", onepassword.WithLookupEnv(lookup(env)))
	require.NoError(t, err)
	_, err = p.Fetch(f.ctx)
	require.NoError(t, err)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x"} {
		out := fmt.Sprintf(verb, p)
		assert.NotContains(t, out, f.srv.Token, verb)
		assert.NotContains(t, out, connectKey, verb)
		assert.Equal(t, "onepassword.Provider(connect op://prod/tessera/credential)", out, verb)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("made", "provider", p)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("made", "provider", p)
	assert.NotContains(t, buf.String(), f.srv.Token)
}

// assertKey checks that got holds want, comparing fingerprints, so that a
// failure prints no key.
func assertKey(t *testing.T, want string, got keyprovider.Key, msgAndArgs ...any) {
	t.Helper()
	assert.Equal(t, keyprovider.NewKey(want, "").Fingerprint(), got.Fingerprint(), msgAndArgs...)
}
