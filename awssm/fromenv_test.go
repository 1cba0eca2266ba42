package awssm_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/awssm"
	"github.com/keyprovider/keyprovider/awssm/awssmtest"
)

// The process's own credentials, which no injected environment may send
// anywhere.
const (
	processKeyID  = "AKIAPROCESSOWNKEY000"
	processSecret = "process/secret/access/key/NEVERSENT0"
	processToken  = "process-session-token-NEVERSENT0000"
)

// setProcessCredentials gives the process environment and its home
// directory's shared files credentials, a region and an endpoint of their
// own.
func setProcessCredentials(t *testing.T, endpoint string) {
	t.Helper()
	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".aws"), 0o700))
	creds := fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", processKeyID, processSecret)
	require.NoError(t, os.WriteFile(filepath.Join(home, ".aws", "credentials"), []byte(creds), 0o600))
	t.Setenv("HOME", home)
	t.Setenv("AWS_CONFIG_FILE", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", processKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", processSecret)
	t.Setenv("AWS_SESSION_TOKEN", processToken)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "eu-west-3")
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint)
}

// recorder is a loopback server in front of an emulator that keeps every
// request's Authorization and X-Amz-Security-Token headers.
type recorder struct {
	*httptest.Server
	mu      sync.Mutex
	headers []string
}

func newRecorder(t *testing.T, next http.Handler) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.headers = append(r.headers, req.Header.Get("Authorization")+" "+req.Header.Get("X-Amz-Security-Token"))
		r.mu.Unlock()
		if next == nil {
			http.Error(w, "recorder only", http.StatusTeapot)
			return
		}
		next.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

// seen returns the headers recorded, one request a line.
func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.headers...)
}

func envOf(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// TestInjectedEnvironmentIsTheWholeConfiguration: with WithLookupEnv, the
// process's credentials, region, endpoint and home-directory files are
// never used, so an env file cannot send them to an endpoint it names.
func TestInjectedEnvironmentIsTheWholeConfiguration(t *testing.T) {
	srv := awssmtest.NewServer(t)
	create(t, srv, "svc", keyOne)
	processSide := newRecorder(t, nil)
	setProcessCredentials(t, processSide.URL)
	dir := t.TempDir()
	credFile := filepath.Join(dir, "credentials")
	require.NoError(t, os.WriteFile(credFile, fmt.Appendf(nil, "[ci]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		awssmtest.DefaultAccessKeyID, awssmtest.DefaultSecretAccessKey), 0o600))
	tests := []struct {
		name    string
		env     map[string]string
		wantErr error // nil: the fetch succeeds
	}{
		{"static keys", map[string]string{
			"AWS_ACCESS_KEY_ID": awssmtest.DefaultAccessKeyID, "AWS_SECRET_ACCESS_KEY": awssmtest.DefaultSecretAccessKey,
			"AWS_REGION": awssmtest.DefaultRegion}, nil},
		{"a profile in a file the environment names", map[string]string{
			"AWS_SHARED_CREDENTIALS_FILE": credFile, "AWS_PROFILE": "ci", "AWS_DEFAULT_REGION": awssmtest.DefaultRegion}, nil},
		{"no credentials", map[string]string{"AWS_REGION": awssmtest.DefaultRegion}, keyprovider.ErrInvalidKey},
		{"a profile of the home directory's files", map[string]string{
			"AWS_PROFILE": "default", "AWS_REGION": awssmtest.DefaultRegion}, keyprovider.ErrInvalidKey},
		{"half a key pair", map[string]string{
			"AWS_ACCESS_KEY_ID": awssmtest.DefaultAccessKeyID, "AWS_REGION": awssmtest.DefaultRegion}, keyprovider.ErrInvalidKey},
		{"no region", map[string]string{
			"AWS_ACCESS_KEY_ID": awssmtest.DefaultAccessKeyID, "AWS_SECRET_ACCESS_KEY": awssmtest.DefaultSecretAccessKey}, keyprovider.ErrInvalidKey},
		{"a malformed region", map[string]string{
			"AWS_ACCESS_KEY_ID": awssmtest.DefaultAccessKeyID, "AWS_SECRET_ACCESS_KEY": awssmtest.DefaultSecretAccessKey,
			"AWS_REGION": "us-east-1.evil.example/"}, keyprovider.ErrInvalidKey},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			injected := newRecorder(t, srv)
			tc.env["AWS_ENDPOINT_URL"] = injected.URL
			p, err := awssm.FromEnv(ctx, "svc", awssm.WithLookupEnv(envOf(tc.env)))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Nil(t, p)
				assert.Empty(t, injected.seen())
			} else {
				require.NoError(t, err)
				defer p.Close()
				k, err := p.Fetch(ctx)
				require.NoError(t, err)
				assertKey(t, keyOne, k)
				require.NotEmpty(t, injected.seen())
			}
			for _, h := range injected.seen() {
				assert.NotContains(t, h, processKeyID)
				assert.NotContains(t, h, processToken)
				assert.Contains(t, h, awssmtest.DefaultAccessKeyID)
			}
			assert.Empty(t, processSide.seen(), "the process's endpoint is not used")
		})
	}
}

func TestInjectedEnvironmentRefusesLoadOptions(t *testing.T) {
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE0000", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1"}
	_, err := awssm.FromEnv(context.Background(), "svc", awssm.WithLookupEnv(envOf(env)),
		awssm.WithLoadOptions(config.WithRegion("us-east-1")))
	require.ErrorIs(t, err, keyprovider.ErrInvalidKey)
	assert.Contains(t, err.Error(), "LookupEnv")
}

// TestFromEnvDefaultChain: without WithLookupEnv the SDK's default chain
// configures the client, the options on top.
func TestFromEnvDefaultChain(t *testing.T) {
	srv := awssmtest.NewServer(t)
	arn, _ := create(t, srv, "svc", keyOne)
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", awssmtest.DefaultAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", awssmtest.DefaultSecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "eu-west-1")

	ctx := context.Background()
	fetchWith := func(t *testing.T, id string, opts ...awssm.Option) (keyprovider.Key, error) {
		t.Helper()
		p, err := awssm.FromEnv(ctx, id, opts...)
		require.NoError(t, err)
		defer p.Close()
		return p.Fetch(ctx)
	}
	t.Run("region from the ARN", func(t *testing.T) {
		k, err := fetchWith(t, arn, awssm.WithEndpoint(srv.URL()))
		require.NoError(t, err)
		assertKey(t, keyOne, k)
	})
	t.Run("explicit region", func(t *testing.T) {
		k, err := fetchWith(t, "svc", awssm.WithEndpoint(srv.URL()), awssm.WithRegion("us-east-1"))
		require.NoError(t, err)
		assertKey(t, keyOne, k)
	})
	t.Run("region from the environment", func(t *testing.T) {
		_, err := fetchWith(t, "svc", awssm.WithEndpoint(srv.URL()))
		require.ErrorIs(t, err, keyprovider.ErrPermission, "the emulator serves us-east-1, the environment says eu-west-1")
	})
	t.Run("a broken shared config is a configuration error", func(t *testing.T) {
		t.Setenv("AWS_PROFILE", "missing-profile")
		_, err := awssm.FromEnv(ctx, "svc", awssm.WithEndpoint(srv.URL()))
		require.ErrorIs(t, err, keyprovider.ErrInvalidKey)
	})
}

// TestErrorsAreScrubbedOfCredentials: a server (or a proxy) that echoes the
// secret access key, the session token and a key gets none of them into
// Fetch's error.
func TestErrorsAreScrubbedOfCredentials(t *testing.T) {
	const (
		secret = "echoed/secret/access/key/0123456789"
		token  = "echoed-session-token-0123456789abcdef"
		leaked = "sk-tessera-echoedKEY0123456789"
	)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"AccessDeniedException","message":"denied: key %s token %s value %s"}`,
			secret, r.Header.Get("X-Amz-Security-Token"), leaked)
	}))
	defer echo.Close()
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AKIAECHOEXAMPLE0000", "AWS_SECRET_ACCESS_KEY": secret,
		"AWS_SESSION_TOKEN": token, "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_SECRETS_MANAGER": echo.URL}
	p, err := awssm.FromEnv(context.Background(), "svc", awssm.WithLookupEnv(envOf(env)))
	require.NoError(t, err)
	defer p.Close()
	_, err = p.Fetch(context.Background())
	require.ErrorIs(t, err, keyprovider.ErrPermission)
	msg := err.Error()
	assert.Contains(t, msg, "denied: key", "the server's message is kept")
	for _, s := range []string{secret, token, leaked} {
		assert.NotContains(t, msg, s)
	}
	assert.Contains(t, msg, "sk-tessera-…", "a key is shown by its fingerprint")

	// A *secretsmanager.Client given to New: the Provider records the
	// credentials it signs with, and scrubs them too.
	client := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String(echo.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIAECHOEXAMPLE0000", SecretAccessKey: secret, SessionToken: token}, nil
		}), Retryer: aws.NopRetryer{}})
	p2, err := awssm.New(client, "svc")
	require.NoError(t, err)
	_, err = p2.Fetch(context.Background())
	require.ErrorIs(t, err, keyprovider.ErrPermission)
	for _, s := range []string{secret, token, leaked} {
		assert.NotContains(t, err.Error(), s)
	}
}

// TestCloseReleasesOnlyWhatFromEnvBuilt: Close closes the idle connections
// of the client FromEnv built (the server sees them closed, goleak sees no
// goroutine left), is idempotent, and leaves a client given to New working.
func TestCloseReleasesOnlyWhatFromEnvBuilt(t *testing.T) {
	srv := awssmtest.NewServer(t)
	create(t, srv, "svc", keyOne)
	ctx := context.Background()
	var (
		mu   sync.Mutex
		open = map[net.Conn]bool{}
	)
	front := httptest.NewUnstartedServer(srv)
	front.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		open[c] = s != http.StateClosed && s != http.StateHijacked
	}
	front.Start()
	defer front.Close()
	openConns := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range open {
			if o {
				n++
			}
		}
		return n
	}
	before := goleak.IgnoreCurrent()
	env := map[string]string{"AWS_ACCESS_KEY_ID": awssmtest.DefaultAccessKeyID, "AWS_SECRET_ACCESS_KEY": awssmtest.DefaultSecretAccessKey,
		"AWS_REGION": awssmtest.DefaultRegion, "AWS_ENDPOINT_URL": front.URL}
	p, err := awssm.FromEnv(ctx, "svc", awssm.WithLookupEnv(envOf(env)))
	require.NoError(t, err)
	// The transport keeps a connection alive only when the response was read
	// to its end before the SDK closed it, which it does not always do; so
	// fetch until one is kept (in practice the first or second fetch).
	for i := 0; i < 20 && openConns() != 1; i++ {
		_, err = p.Fetch(ctx)
		require.NoError(t, err)
		if openConns() != 1 {
			time.Sleep(time.Millisecond) // let a closing connection's state land
		}
	}
	require.Equal(t, 1, openConns(), "the client keeps a connection alive")
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "a second Close is harmless")
	require.Eventually(t, func() bool { return openConns() == 0 }, 5*time.Second, time.Millisecond,
		"the server sees the idle connection closed")
	goleak.VerifyNone(t, before)
	_, err = p.Fetch(ctx)
	require.ErrorIs(t, err, keyprovider.ErrUnavailable)
	assert.Contains(t, err.Error(), "closed")

	owned, err := awssm.New(srv.Client(), "svc")
	require.NoError(t, err)
	require.NoError(t, owned.Close())
	other, err := awssm.New(srv.Client(), "svc")
	require.NoError(t, err)
	_, err = other.Fetch(ctx)
	require.NoError(t, err, "the caller's client still works")
}

// TestMalformedARNRegionIsInvalidAtNew: a region that is not one, inside an
// ARN, is a configuration error before any request.
func TestMalformedARNRegionIsInvalidAtNew(t *testing.T) {
	srv := awssmtest.NewServer(t)
	srv.ResetCounts()
	for _, arn := range []string{
		"arn:aws:secretsmanager:eu/west@1:123456789012:secret:prod/tessera-AbCdEf",
		"arn:aws:secretsmanager:EU-WEST-1:123456789012:secret:prod/tessera-AbCdEf",
		"arn:aws:secretsmanager:" + strings.Repeat("a", 40) + ":123456789012:secret:x",
	} {
		_, err := awssm.New(srv.Client(), arn)
		require.ErrorIs(t, err, keyprovider.ErrInvalidKey, arn)
		assert.NotErrorIs(t, err, keyprovider.ErrUnavailable)
		_, err = awssm.FromEnv(context.Background(), arn, awssm.WithEndpoint(srv.URL()))
		require.ErrorIs(t, err, keyprovider.ErrInvalidKey, arn)
	}
	assert.Zero(t, srv.Count("GetSecretValue"), "no request was made")
}

// assertKey checks that got holds want, comparing fingerprints, so that a
// failure prints no key.
func assertKey(t *testing.T, want string, got keyprovider.Key, msgAndArgs ...any) {
	t.Helper()
	assert.Equal(t, keyprovider.NewKey(want, "").Fingerprint(), got.Fingerprint(), msgAndArgs...)
}

// TestNoVerbPrintsACredential prints a Provider FromEnv built, dereferenced
// too, a struct holding one and its options, by every verb: the secret
// access key and the session token never show.
func TestNoVerbPrintsACredential(t *testing.T) {
	const token = "session-token-printed-0123456789"
	srv := awssmtest.NewServer(t, awssmtest.WithSessionToken(token))
	create(t, srv, "svc", keyOne)
	env := map[string]string{"AWS_ACCESS_KEY_ID": awssmtest.DefaultAccessKeyID, "AWS_SECRET_ACCESS_KEY": awssmtest.DefaultSecretAccessKey,
		"AWS_SESSION_TOKEN": token, "AWS_REGION": awssmtest.DefaultRegion, "AWS_ENDPOINT_URL": srv.URL()}
	opts := []awssm.Option{awssm.WithLookupEnv(envOf(env)), awssm.WithJSONField("")}
	p, err := awssm.FromEnv(context.Background(), "svc", opts...)
	require.NoError(t, err)
	defer p.Close()
	_, err = p.Fetch(context.Background())
	require.NoError(t, err, "the credentials are retrieved, and recorded for scrubbing")
	var o awssm.Options
	for _, fn := range opts {
		fn(&o)
	}
	type holder struct {
		P *awssm.Provider
		v awssm.Provider
		o awssm.Options
	}
	values := map[string]any{"provider": p, "dereferenced provider": *p, "options": o,
		"holder": holder{P: p, v: *p, o: o}, "holder pointer": &holder{P: p, v: *p}}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			out := fmt.Sprintf(verb, v)
			for _, secret := range []string{awssmtest.DefaultSecretAccessKey, token} {
				assert.NotContains(t, out, secret, "%s %s", name, verb)
				assert.NotContains(t, out, fmt.Sprintf("%x", secret), "%s %s", name, verb)
			}
		}
	}
}

// receive waits for a value from a goroutine, within a deadline far below
// the package timeout.
func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no answer within 10s")
		var zero T
		return zero
	}
}
