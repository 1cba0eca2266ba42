package onepassword_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	sdk "github.com/1password/onepassword-sdk-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/onepassword"
	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

// These tests drive the SDK path through a fake of the SDK's Secrets API.

const sdkRef = "op://prod/tessera/credential"

var _ onepassword.SecretsAPI = sdk.SecretsAPI(nil) // the real client fits

func TestSDKFetch(t *testing.T) {
	r := onepasswordtest.NewSecrets()
	r.Set(sdkRef, "  "+connectKey+"\n")
	p, err := onepassword.New(r, sdkRef, onepassword.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	k, err := p.Fetch(context.Background())
	require.NoError(t, err)
	assertKey(t, connectKey, k, "trimmed")
	assert.Empty(t, k.Version(), "the Secrets API gives no version")

	_, err = onepassword.New(r, sdkRef, onepassword.WithService(keyprovider.Tesseral))
	require.NoError(t, err)
	p2, _ := onepassword.New(r, sdkRef, onepassword.WithService(keyprovider.Tesseral))
	_, err = p2.Fetch(context.Background())
	assert.ErrorIs(t, err, keyprovider.ErrInvalidKey, "a Tessera key is not a Tesseral key")
	assert.NotContains(t, err.Error(), connectKey)
}

func TestSDKErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{onepasswordtest.ErrNoVault, keyprovider.ErrNotFound},
		{onepasswordtest.ErrNoItem, keyprovider.ErrNotFound},
		{onepasswordtest.ErrNoField, keyprovider.ErrNotFound},
		{onepasswordtest.ErrManyItems, keyprovider.ErrNotFound},
		{onepasswordtest.ErrUnauthenticated, keyprovider.ErrPermission},
		{onepasswordtest.ErrForbidden, keyprovider.ErrPermission},
		{onepasswordtest.ErrBadToken, keyprovider.ErrPermission},
		{onepasswordtest.ErrRateLimited, keyprovider.ErrUnavailable},
		{&sdk.RateLimitExceededError{}, keyprovider.ErrUnavailable},
		{onepasswordtest.ErrNetwork, keyprovider.ErrUnavailable},
		{errors.New("something nobody expected"), keyprovider.ErrUnavailable},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			r := onepasswordtest.NewSecrets()
			r.Set(sdkRef, connectKey)
			r.Fail(tc.err)
			p, err := onepassword.New(r, sdkRef)
			require.NoError(t, err)
			_, err = p.Fetch(context.Background())
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
			assert.ErrorIs(t, err, tc.err, "the SDK's error stays reachable")
			assert.NotContains(t, err.Error(), connectKey)
		})
	}
}

func TestSDKMissingReferenceIsNotFound(t *testing.T) {
	p, err := onepassword.New(onepasswordtest.NewSecrets(), sdkRef)
	require.NoError(t, err)
	_, err = p.Fetch(context.Background())
	assert.ErrorIs(t, err, keyprovider.ErrNotFound)
}

func TestCancelledFetchSaysSo(t *testing.T) {
	r := onepasswordtest.NewSecrets()
	r.Set(sdkRef, connectKey)
	p, err := onepassword.New(r, sdkRef)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.Fetch(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, r.Calls(), "a done context costs no backend call")
}

// blockingResolver ignores its context and answers when released, like a
// client stuck on a dead connection.
type blockingResolver struct {
	release chan struct{}
	mu      sync.Mutex
	calls   int
}

func (b *blockingResolver) Resolve(context.Context, string) (string, error) {
	b.mu.Lock()
	b.calls++
	b.mu.Unlock()
	<-b.release
	return connectKey, nil
}

func TestResolverIgnoringContextDoesNotHangFetch(t *testing.T) {
	b := &blockingResolver{release: make(chan struct{})}
	p, err := onepassword.New(b, sdkRef)
	require.NoError(t, err)
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := p.Fetch(ctx)
		cancel()
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	}
	b.mu.Lock()
	assert.Equal(t, 1, b.calls, "abandoned calls are bounded to one per Provider")
	b.mu.Unlock()
	close(b.release)
	k, err := p.Fetch(context.Background())
	require.NoError(t, err)
	assertKey(t, connectKey, k)
}

type panickingResolver struct{}

func (panickingResolver) Resolve(context.Context, string) (string, error) {
	panic("resolver bug: " + connectKey)
}

func TestResolverPanicIsAnError(t *testing.T) {
	p, err := onepassword.New(panickingResolver{}, sdkRef)
	require.NoError(t, err)
	_, err = p.Fetch(context.Background())
	assert.ErrorIs(t, err, keyprovider.ErrUnavailable)
	assert.NotContains(t, err.Error(), connectKey, "the panic value is not repeated")
}

func TestIntegrationInfoIsCheckedBySDK(t *testing.T) {
	env := map[string]string{onepassword.EnvServiceAccountToken: "garbage-token-value"}
	_, err := onepassword.FromEnv(context.Background(), sdkRef, onepassword.WithLookupEnv(lookup(env)),
		onepassword.WithIntegrationName("my service"), onepassword.WithIntegrationVersion("(v1)"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "integration")
}

func newSDKResolver(value string) *onepasswordtest.Secrets {
	r := onepasswordtest.NewSecrets()
	r.Set(sdkRef, value)
	return r
}
