package awssm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/awssm"
	"github.com/keyprovider/keyprovider/awssm/awssmtest"
)

const (
	keyOne = "sk-tessera-awssmONE111111"
	keyTwo = "sk-tessera-awssmTWO222222"
)

// create makes a secret holding value and returns its ARN and version ID.
func create(t *testing.T, srv *awssmtest.Server, name, value string) (arn, version string) {
	t.Helper()
	out, err := srv.Client().CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(value),
	})
	require.NoError(t, err)
	return aws.ToString(out.ARN), aws.ToString(out.VersionId)
}

// put adds a version holding value with the given stages (none: AWSCURRENT)
// and returns its version ID.
func put(t *testing.T, srv *awssmtest.Server, id, value string, stages ...string) string {
	t.Helper()
	out, err := srv.Client().PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(id), SecretString: aws.String(value), VersionStages: stages,
	})
	require.NoError(t, err)
	return aws.ToString(out.VersionId)
}

func fetch(t *testing.T, client awssm.API, id string, opts ...awssm.Option) (keyprovider.Key, error) {
	t.Helper()
	p, err := awssm.New(client, id, opts...)
	require.NoError(t, err)
	return p.Fetch(context.Background())
}

func TestSecretIDByNameAndARN(t *testing.T) {
	srv := awssmtest.NewServer(t)
	arn, version := create(t, srv, "prod/tessera", keyOne)
	require.True(t, strings.HasPrefix(arn, "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/tessera-"), arn)

	for _, id := range []string{"prod/tessera", arn, strings.TrimSuffix(arn, arn[len(arn)-7:])} {
		t.Run(id, func(t *testing.T) {
			k, err := fetch(t, srv.Client(), id)
			require.NoError(t, err)
			assertKey(t, keyOne, k)
			assert.Equal(t, version, k.Version(), "Key.Version is the AWS VersionId")
		})
	}
	t.Run("an ARN with another suffix is another secret", func(t *testing.T) {
		_, err := fetch(t, srv.Client(), arn[:len(arn)-6]+"zzzzzz")
		assert.ErrorIs(t, err, keyprovider.ErrNotFound)
	})
}

func TestStageAndVersionID(t *testing.T) {
	srv := awssmtest.NewServer(t)
	_, v1 := create(t, srv, "svc", keyOne)
	v2 := put(t, srv, "svc", keyTwo, "AWSPENDING")

	tests := []struct {
		name        string
		opts        []awssm.Option
		want, wantV string
	}{
		{"default is AWSCURRENT, never AWSPENDING", nil, keyOne, v1},
		{"AWSCURRENT by name", []awssm.Option{awssm.WithVersionStage("AWSCURRENT")}, keyOne, v1},
		{"AWSPENDING when asked", []awssm.Option{awssm.WithVersionStage("AWSPENDING")}, keyTwo, v2},
		{"version ID of the current version", []awssm.Option{awssm.WithVersionID(v1)}, keyOne, v1},
		{"version ID of the pending version", []awssm.Option{awssm.WithVersionID(v2)}, keyTwo, v2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := fetch(t, srv.Client(), "svc", tc.opts...)
			require.NoError(t, err)
			assertKey(t, tc.want, k)
			assert.Equal(t, tc.wantV, k.Version())
		})
	}

	t.Run("a stage no version has is not found", func(t *testing.T) {
		_, err := fetch(t, srv.Client(), "svc", awssm.WithVersionStage("AWSPREVIOUS"))
		assert.ErrorIs(t, err, keyprovider.ErrNotFound)
		var nf *types.ResourceNotFoundException
		assert.ErrorAs(t, err, &nf)
	})
	t.Run("a secret created without a value is not found", func(t *testing.T) {
		_, err := srv.Client().CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String("empty")})
		require.NoError(t, err)
		_, err = fetch(t, srv.Client(), "empty")
		assert.ErrorIs(t, err, keyprovider.ErrNotFound)
	})
	t.Run("an unknown version ID is not found", func(t *testing.T) {
		_, err := fetch(t, srv.Client(), "svc", awssm.WithVersionID("00000000-0000-0000-0000-000000000000"))
		assert.ErrorIs(t, err, keyprovider.ErrNotFound)
	})
	t.Run("a malformed version ID is a configuration error", func(t *testing.T) {
		_, err := fetch(t, srv.Client(), "svc", awssm.WithVersionID("v1"))
		assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
		var ip *types.InvalidParameterException
		assert.ErrorAs(t, err, &ip)
	})
}

func TestNewRejectsBadConfiguration(t *testing.T) {
	client := awssmtest.NewServer(t).Client()
	tests := []struct {
		name   string
		client awssm.API
		id     string
		opts   []awssm.Option
	}{
		{"nil client", nil, "svc", nil},
		{"empty secret ID", client, "  ", nil},
		{"stage and version ID", client, "svc", []awssm.Option{awssm.WithVersionStage("AWSCURRENT"), awssm.WithVersionID("0123456789abcdef0123456789abcdef")}},
		{"ARN of another service", client, "arn:aws:ssm:us-east-1:123456789012:parameter/x", nil},
		{"ARN without a name", client, "arn:aws:secretsmanager:us-east-1:123456789012:secret:", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := awssm.New(tc.client, tc.id, tc.opts...)
			assert.Nil(t, p)
			assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
			var kerr *keyprovider.Error
			require.ErrorAs(t, err, &kerr)
			assert.Equal(t, "awssm", kerr.Provider)
		})
	}
}

func TestSecretValueShapes(t *testing.T) {
	const secretPart = "SHAPEsecret9876"
	srv := awssmtest.NewServer(t)
	ctx := context.Background()
	mk := func(name string, in *secretsmanager.CreateSecretInput) string {
		in.Name = aws.String(name)
		_, err := srv.Client().CreateSecret(ctx, in)
		require.NoError(t, err)
		return name
	}
	str := func(name, v string) string {
		return mk(name, &secretsmanager.CreateSecretInput{SecretString: aws.String(v)})
	}

	tests := []struct {
		name     string
		id       string
		opts     []awssm.Option
		want     string
		wantKind error
	}{
		{"plain string", str("plain", keyOne+"\n"), nil, keyOne, nil},
		{"binary", mk("bin", &secretsmanager.CreateSecretInput{SecretBinary: []byte(keyOne)}), nil, keyOne, nil},
		{"JSON field", str("json", `{"api_key":"`+keyOne+`","other":1}`), []awssm.Option{awssm.WithJSONField("api_key")}, keyOne, nil},
		{"JSON field in binary", mk("jsonbin", &secretsmanager.CreateSecretInput{SecretBinary: []byte(`{"api_key":"` + keyOne + `"}`)}), []awssm.Option{awssm.WithJSONField("api_key")}, keyOne, nil},
		{"JSON without the field", str("nofield", `{"token":"sk-tessera-`+secretPart+`"}`), []awssm.Option{awssm.WithJSONField("api_key")}, "", keyprovider.ErrNotFound},
		{"JSON field not a string", str("number", `{"api_key":12345`+`}`), []awssm.Option{awssm.WithJSONField("api_key")}, "", keyprovider.ErrInvalidKey},
		{"JSON field null", str("null", `{"api_key":null}`), []awssm.Option{awssm.WithJSONField("api_key")}, "", keyprovider.ErrInvalidKey},
		{"JSON field empty", str("emptyfield", `{"api_key":""}`), []awssm.Option{awssm.WithJSONField("api_key")}, "", keyprovider.ErrInvalidKey},
		{"invalid JSON", str("badjson", `{"api_key":"sk-tessera-`+secretPart), []awssm.Option{awssm.WithJSONField("api_key")}, "", keyprovider.ErrInvalidKey},
		{"JSON array", str("array", `["sk-tessera-`+secretPart+`"]`), []awssm.Option{awssm.WithJSONField("api_key")}, "", keyprovider.ErrInvalidKey},
		{"JSON object without WithJSONField", str("unasked", `{"api_key":"sk-tessera-`+secretPart+`"}`), nil, "", keyprovider.ErrInvalidKey},
		{"empty string", str("empty", ""), nil, "", keyprovider.ErrInvalidKey},
		{"wrong service prefix", str("prefix", "tesseral_secret_key_"+secretPart), []awssm.Option{awssm.WithService(keyprovider.Tessera)}, "", keyprovider.ErrInvalidKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := fetch(t, srv.Client(), tc.id, tc.opts...)
			if tc.wantKind == nil {
				require.NoError(t, err)
				assertKey(t, tc.want, k)
				return
			}
			require.ErrorIs(t, err, tc.wantKind)
			assert.True(t, k.IsZero())
			for _, msg := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
				assert.NotContains(t, msg, secretPart, "the error quotes the secret")
			}
		})
	}
}

// check is a test of an error beyond its class.
type check func(t *testing.T, err error)

// code checks the AWS error code of err.
func code(want string) check {
	return func(t *testing.T, err error) {
		var apiErr smithy.APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, want, apiErr.ErrorCode())
	}
}

// errorMappingCases are the failures TestErrorMapping drives.
var errorMappingCases = []struct {
	name  string
	setup func(t *testing.T, srv *awssmtest.Server) (awssm.API, string)
	kind  error
	check check
}{
	{
		name:  "missing secret",
		setup: func(t *testing.T, srv *awssmtest.Server) (awssm.API, string) { return srv.Client(), "nope" },
		kind:  keyprovider.ErrNotFound,
		check: func(t *testing.T, err error) {
			var nf *types.ResourceNotFoundException
			require.ErrorAs(t, err, &nf)
		},
	},
	{
		name: "secret scheduled for deletion",
		setup: func(t *testing.T, srv *awssmtest.Server) (awssm.API, string) {
			create(t, srv, "doomed", keyOne)
			_, err := srv.Client().DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: aws.String("doomed")})
			require.NoError(t, err)
			return srv.Client(), "doomed"
		},
		kind: keyprovider.ErrNotFound,
		check: func(t *testing.T, err error) {
			var ir *types.InvalidRequestException
			require.ErrorAs(t, err, &ir)
			assert.Contains(t, err.Error(), "scheduled for deletion")
		},
	},
	{
		name:  "access denied",
		setup: faulty(awssmtest.AccessDenied, 1),
		kind:  keyprovider.ErrPermission,
		check: code("AccessDeniedException"),
	},
	{
		name:  "KMS decryption failure",
		setup: faulty(awssmtest.DecryptionFailure, 1),
		kind:  keyprovider.ErrPermission,
		check: func(t *testing.T, err error) {
			var df *types.DecryptionFailure
			require.ErrorAs(t, err, &df)
			assert.Contains(t, err.Error(), "KMS key")
		},
	},
	{
		name:  "throttled past the retries",
		setup: faulty(awssmtest.Throttling, -1),
		kind:  keyprovider.ErrUnavailable,
		check: code("ThrottlingException"),
	},
	{
		name:  "internal service error past the retries",
		setup: faulty(awssmtest.InternalServiceError, -1),
		kind:  keyprovider.ErrUnavailable,
		check: func(t *testing.T, err error) {
			var ise *types.InternalServiceError
			require.ErrorAs(t, err, &ise)
		},
	},
	{
		name:  "503 past the retries",
		setup: faulty(awssmtest.ServiceUnavailable, -1),
		kind:  keyprovider.ErrUnavailable,
		check: code("ServiceUnavailable"),
	},
	{
		name:  "unknown code on a 502",
		setup: faulty(awssmtest.Fault{Code: "BadGateway", Status: http.StatusBadGateway}, -1),
		kind:  keyprovider.ErrUnavailable,
		check: code("BadGateway"),
	},
	{
		name:  "unknown code on a 403",
		setup: faulty(awssmtest.Fault{Code: "Forbidden", Status: http.StatusForbidden}, 1),
		kind:  keyprovider.ErrPermission,
		check: code("Forbidden"),
	},
	{
		name:  "connection dropped on every attempt",
		setup: faulty(awssmtest.DropConnection, -1),
		kind:  keyprovider.ErrUnavailable,
		check: func(t *testing.T, err error) {
			var opErr *smithy.OperationError
			require.ErrorAs(t, err, &opErr)
		},
	},
	{
		name: "client signing for another region",
		setup: func(t *testing.T, srv *awssmtest.Server) (awssm.API, string) {
			create(t, srv, "svc", keyOne)
			return srv.NewClient(func(o *secretsmanager.Options) { o.Region = "eu-west-3" }), "svc"
		},
		kind:  keyprovider.ErrPermission,
		check: code("InvalidSignatureException"),
	},
	{
		name: "wrong secret access key",
		setup: func(t *testing.T, srv *awssmtest.Server) (awssm.API, string) {
			create(t, srv, "svc", keyOne)
			return srv.NewClient(func(o *secretsmanager.Options) {
				o.Credentials = staticCreds(awssmtest.DefaultAccessKeyID, "not-the-secret")
			}), "svc"
		},
		kind:  keyprovider.ErrPermission,
		check: code("InvalidSignatureException"),
	},
	{
		name: "unknown access key",
		setup: func(t *testing.T, srv *awssmtest.Server) (awssm.API, string) {
			create(t, srv, "svc", keyOne)
			return srv.NewClient(func(o *secretsmanager.Options) {
				o.Credentials = staticCreds("AKIAUNKNOWN", "whatever")
			}), "svc"
		},
		kind:  keyprovider.ErrPermission,
		check: code("UnrecognizedClientException"),
	},
	{
		name: "no credentials to be had",
		setup: func(t *testing.T, srv *awssmtest.Server) (awssm.API, string) {
			create(t, srv, "svc", keyOne)
			return srv.NewClient(func(o *secretsmanager.Options) {
				o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{}, errNoCreds
				})
			}), "svc"
		},
		kind: keyprovider.ErrPermission,
		check: func(t *testing.T, err error) {
			assert.ErrorIs(t, err, errNoCreds)
		},
	},
	{
		name: "HTTP client timeout",
		setup: func(t *testing.T, srv *awssmtest.Server) (awssm.API, string) {
			create(t, srv, "svc", keyOne)
			srv.SetDelay(hang)
			return srv.NewClient(func(o *secretsmanager.Options) {
				o.HTTPClient = &http.Client{Timeout: 20 * time.Millisecond}
				o.Retryer = awssmtest.InstantRetryer(1)
			}), "svc"
		},
		kind: keyprovider.ErrUnavailable,
		check: func(t *testing.T, err error) {
			var opErr *smithy.OperationError
			require.ErrorAs(t, err, &opErr)
		},
	},
}

// TestErrorMapping drives every failure through the real SDK client and
// checks its class and that the SDK's own error is still reachable.
func TestErrorMapping(t *testing.T) {
	for _, tc := range errorMappingCases {
		t.Run(tc.name, func(t *testing.T) {
			srv := awssmtest.NewServer(t)
			client, id := tc.setup(t, srv)
			k, err := fetch(t, client, id)
			require.ErrorIs(t, err, tc.kind)
			assert.True(t, k.IsZero())
			var kerr *keyprovider.Error
			require.ErrorAs(t, err, &kerr)
			assert.Equal(t, "awssm", kerr.Provider)
			assert.Equal(t, id, kerr.Ref)
			assert.NotContains(t, err.Error(), keyOne)
			tc.check(t, err)
		})
	}
}

var errNoCreds = errors.New("no credentials in this test")

func staticCreds(akid, secret string) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}, nil
	})
}

// hang holds a request until the client or the server gives up on it.
func hang(ctx context.Context, _ awssmtest.RequestInfo) error {
	<-ctx.Done()
	return ctx.Err()
}

// faulty returns a setup making a secret "svc" whose reads fail n times
// with f.
func faulty(f awssmtest.Fault, n int) func(t *testing.T, srv *awssmtest.Server) (awssm.API, string) {
	return func(t *testing.T, srv *awssmtest.Server) (awssm.API, string) {
		create(t, srv, "svc", keyOne)
		srv.FailNext(awssmtest.Match{Op: "GetSecretValue", SecretID: "svc"}, f, n)
		return srv.Client(), "svc"
	}
}

func TestThrottlingAbsorbedByRetryer(t *testing.T) {
	srv := awssmtest.NewServer(t)
	create(t, srv, "svc", keyOne)
	srv.ResetCounts()
	srv.FailNext(awssmtest.Match{Op: "GetSecretValue"}, awssmtest.Throttling, 2)

	k, err := fetch(t, srv.Client(), "svc") // three attempts: two throttled, one served
	require.NoError(t, err)
	assertKey(t, keyOne, k)
	assert.Equal(t, 3, srv.Count("GetSecretValue"))

	srv.FailNext(awssmtest.Match{Op: "GetSecretValue"}, awssmtest.Throttling, 3)
	_, err = fetch(t, srv.Client(), "svc")
	require.ErrorIs(t, err, keyprovider.ErrUnavailable, "three throttles exhaust three attempts")
	assert.Equal(t, 6, srv.Count("GetSecretValue"))
}

func TestContextCancellationReleasesBlockedRequest(t *testing.T) {
	srv := awssmtest.NewServer(t)
	create(t, srv, "svc", keyOne)
	entered := make(chan struct{}, 1)
	srv.SetDelay(func(ctx context.Context, r awssmtest.RequestInfo) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})
	p, err := awssm.New(srv.Client(), "svc")
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Fetch(ctx)
		done <- err
	}()
	receive(t, entered) // the request is held in the emulator
	cancel()
	err = receive(t, done)
	require.ErrorIs(t, err, context.Canceled)
	var kerr *keyprovider.Error
	require.ErrorAs(t, err, &kerr)
	assert.Nil(t, kerr.Kind, "a cancelled fetch is the caller's doing, not the backend's")
}

// deadlineCtx is a context whose deadline the test makes pass, without a
// timer.
type deadlineCtx struct {
	context.Context
	done chan struct{}
}

func (c deadlineCtx) Done() <-chan struct{} { return c.done }

func (c deadlineCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func TestContextDeadline(t *testing.T) {
	srv := awssmtest.NewServer(t)
	create(t, srv, "svc", keyOne)
	entered := make(chan struct{}, 1)
	srv.SetDelay(func(ctx context.Context, _ awssmtest.RequestInfo) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})
	p, err := awssm.New(srv.Client(), "svc")
	require.NoError(t, err)

	ctx := deadlineCtx{Context: context.Background(), done: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := p.Fetch(ctx)
		done <- err
	}()
	receive(t, entered)
	close(ctx.done) // the deadline passes while the request is held
	err = receive(t, done)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var kerr *keyprovider.Error
	require.ErrorAs(t, err, &kerr)
	assert.Nil(t, kerr.Kind)
}

func TestRotationThroughStagingLabels(t *testing.T) {
	srv := awssmtest.NewServer(t)
	ctx := context.Background()
	_, v1 := create(t, srv, "svc", keyOne)
	p, err := awssm.New(srv.Client(), "svc")
	require.NoError(t, err)

	// A rotation Lambda's createSecret step: the new key goes in as AWSPENDING.
	v2 := put(t, srv, "svc", keyTwo, "AWSPENDING")
	k, err := p.Fetch(ctx)
	require.NoError(t, err)
	assertKey(t, keyOne, k, "AWSPENDING must not be served")
	assert.Equal(t, v1, k.Version())

	// finishSecret: AWSCURRENT moves to the new version.
	_, err = srv.Client().UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("svc"), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(v2), RemoveFromVersionId: aws.String(v1),
	})
	require.NoError(t, err)
	k, err = p.Fetch(ctx)
	require.NoError(t, err)
	assertKey(t, keyTwo, k)
	assert.Equal(t, v2, k.Version())

	prev, err := fetch(t, srv.Client(), "svc", awssm.WithVersionStage("AWSPREVIOUS"))
	require.NoError(t, err)
	assertKey(t, keyOne, prev, "the old key stays readable as AWSPREVIOUS")
}

// BenchmarkFetch measures one Fetch through the SDK client and the emulator
// over loopback HTTP: SigV4 signing, the JSON protocol, and verification.
func BenchmarkFetch(b *testing.B) {
	srv := awssmtest.NewServer(b)
	_, err := srv.Client().CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String("svc"), SecretString: aws.String(`{"api_key":"` + keyOne + `"}`),
	})
	require.NoError(b, err)
	p, err := awssm.New(srv.Client(), "svc", awssm.WithJSONField("api_key"), awssm.WithService(keyprovider.Tessera))
	require.NoError(b, err)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, err := p.Fetch(ctx)
		require.NoError(b, err)
	}
}
