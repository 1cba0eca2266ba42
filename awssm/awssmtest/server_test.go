package awssmtest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider/awssm/awssmtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

// token makes a ClientRequestToken (a VersionId) of the valid length.
func token(s string) string { return s + "-0123456789abcdef0123456789abcdef" }

func createSecret(t *testing.T, c *secretsmanager.Client, name, value string) *secretsmanager.CreateSecretOutput {
	t.Helper()
	out, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	require.NoError(t, err)
	return out
}

// stages returns the secret's version ID → labels, as DescribeSecret reports
// them.
func stages(t *testing.T, c *secretsmanager.Client, id string) map[string][]string {
	t.Helper()
	out, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	require.NoError(t, err)
	for _, l := range out.VersionIdsToStages {
		sort.Strings(l)
	}
	return out.VersionIdsToStages
}

func getValue(t *testing.T, c *secretsmanager.Client, in *secretsmanager.GetSecretValueInput) (string, error) {
	t.Helper()
	out, err := c.GetSecretValue(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

func apiCode(t *testing.T, err error) string {
	t.Helper()
	var apiErr smithy.APIError
	require.ErrorAs(t, err, &apiErr)
	return apiErr.ErrorCode()
}

// moveStage runs UpdateSecretVersionStage; an empty to or from is left out.
func moveStage(c *secretsmanager.Client, id, stage, to, from string) error {
	in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(id), VersionStage: aws.String(stage)}
	if to != "" {
		in.MoveToVersionId = aws.String(to)
	}
	if from != "" {
		in.RemoveFromVersionId = aws.String(from)
	}
	_, err := c.UpdateSecretVersionStage(ctx, in)
	return err
}

// listVersions returns the version IDs ListSecretVersionIds lists.
func listVersions(t *testing.T, c *secretsmanager.Client, id string, deprecated bool) []string {
	t.Helper()
	out, err := c.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(id), IncludeDeprecated: aws.Bool(deprecated)})
	require.NoError(t, err)
	var ids []string
	for _, v := range out.Versions {
		ids = append(ids, aws.ToString(v.VersionId))
		assert.NotNil(t, v.CreatedDate)
	}
	return ids
}

func TestStagingLabels(t *testing.T) {
	srv := awssmtest.NewServer(t)
	c := srv.Client()
	created := createSecret(t, c, "svc", "one")
	v1 := aws.ToString(created.VersionId)
	assert.Equal(t, map[string][]string{v1: {"AWSCURRENT"}}, stages(t, c, "svc"), "CreateSecret's version is AWSCURRENT")

	// PutSecretValue without stages: the new version becomes AWSCURRENT and
	// the old one AWSPREVIOUS.
	put2, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("svc"), SecretString: aws.String("two")})
	require.NoError(t, err)
	v2 := aws.ToString(put2.VersionId)
	assert.Equal(t, []string{"AWSCURRENT"}, put2.VersionStages)
	assert.Equal(t, map[string][]string{v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}}, stages(t, c, "svc"))

	// With [AWSPENDING], AWSCURRENT stays put.
	put3, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String("svc"), SecretString: aws.String("three"), VersionStages: []string{"AWSPENDING"},
	})
	require.NoError(t, err)
	v3 := aws.ToString(put3.VersionId)
	assert.Equal(t, map[string][]string{v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}, v3: {"AWSPENDING"}}, stages(t, c, "svc"))
	got, err := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc")})
	require.NoError(t, err)
	assert.Equal(t, "two", got, "GetSecretValue without a stage returns AWSCURRENT, not AWSPENDING")

	// Moving AWSCURRENT without naming where it is now is refused.
	err = moveStage(c, "svc", "AWSCURRENT", v3, "")
	var ip *types.InvalidParameterException
	require.ErrorAs(t, err, &ip)
	assert.Contains(t, ip.ErrorMessage(), "RemoveFromVersionId")

	// Naming the wrong version is refused too.
	err = moveStage(c, "svc", "AWSCURRENT", v3, v1)
	require.ErrorAs(t, err, &ip)

	// The rotation's last step: AWSCURRENT moves, AWSPREVIOUS follows, the
	// version that held AWSPREVIOUS is left without labels (deprecated).
	err = moveStage(c, "svc", "AWSCURRENT", v3, v2)
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{v2: {"AWSPREVIOUS"}, v3: {"AWSCURRENT", "AWSPENDING"}}, stages(t, c, "svc"))

	// Removing AWSPENDING alone is allowed; removing AWSCURRENT alone is not.
	err = moveStage(c, "svc", "AWSPENDING", "", v3)
	require.NoError(t, err)
	err = moveStage(c, "svc", "AWSCURRENT", "", v3)
	require.ErrorAs(t, err, &ip)
	assert.Equal(t, map[string][]string{v2: {"AWSPREVIOUS"}, v3: {"AWSCURRENT"}}, stages(t, c, "svc"))

	// A custom label can be attached where no version holds it.
	err = moveStage(c, "svc", "canary", v1, "")
	require.NoError(t, err)
	got, err = getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc"), VersionStage: aws.String("canary")})
	require.NoError(t, err)
	assert.Equal(t, "one", got)

	// Deprecated versions: listed only when asked, readable by VersionId.
	err = moveStage(c, "svc", "canary", "", v1)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{v2, v3}, listVersions(t, c, "svc", false))
	assert.ElementsMatch(t, []string{v1, v2, v3}, listVersions(t, c, "svc", true))
	got, err = getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc"), VersionId: aws.String(v1)})
	require.NoError(t, err)
	assert.Equal(t, "one", got)

	// A version ID and a stage it does not have do not go together.
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc"), VersionId: aws.String(v1), VersionStage: aws.String("AWSCURRENT")})
	var ir *types.InvalidRequestException
	require.ErrorAs(t, err, &ir)
}

func TestClientRequestTokenIdempotency(t *testing.T) {
	srv := awssmtest.NewServer(t)
	c := srv.Client()
	created, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("svc"), SecretString: aws.String("one"), ClientRequestToken: aws.String(token("a")),
	})
	require.NoError(t, err)
	assert.Equal(t, token("a"), aws.ToString(created.VersionId), "the token is the VersionId")

	again, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("svc"), SecretString: aws.String("one"), ClientRequestToken: aws.String(token("a")),
	})
	require.NoError(t, err, "a retried CreateSecret succeeds")
	assert.Equal(t, created.ARN, again.ARN)

	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("svc"), SecretString: aws.String("other")})
	var exists *types.ResourceExistsException
	require.ErrorAs(t, err, &exists)

	putB := &secretsmanager.PutSecretValueInput{SecretId: aws.String("svc"), SecretString: aws.String("two"), ClientRequestToken: aws.String(token("b"))}
	_, err = c.PutSecretValue(ctx, putB)
	require.NoError(t, err)
	// A third version moves AWSCURRENT away from b...
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("svc"), SecretString: aws.String("three")})
	require.NoError(t, err)
	// ...and replaying b's request changes nothing.
	replay, err := c.PutSecretValue(ctx, putB)
	require.NoError(t, err)
	assert.Equal(t, token("b"), aws.ToString(replay.VersionId))
	assert.Equal(t, []string{"AWSPREVIOUS"}, replay.VersionStages)
	got, err := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc")})
	require.NoError(t, err)
	assert.Equal(t, "three", got)

	// The same token with another value is an attempt to modify a version.
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("svc"), SecretString: aws.String("changed"), ClientRequestToken: aws.String(token("b"))})
	require.ErrorAs(t, err, &exists)

	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("svc"), SecretString: aws.String("x"), ClientRequestToken: aws.String("short")})
	var ip *types.InvalidParameterException
	require.ErrorAs(t, err, &ip)
}

func TestLookupByNameAndARN(t *testing.T) {
	srv := awssmtest.NewServer(t)
	c := srv.Client()
	a := createSecret(t, c, "team/a", "A")
	b := createSecret(t, c, "team/b", "B")
	arn := aws.ToString(a.ARN)
	require.Regexp(t, `^arn:aws:secretsmanager:us-east-1:123456789012:secret:team/a-[A-Za-z0-9]{6}$`, arn)
	assert.NotEqual(t, arn[len(arn)-6:], aws.ToString(b.ARN)[len(aws.ToString(b.ARN))-6:], "suffixes are random")

	for _, id := range []string{"team/a", arn, arn[:len(arn)-7]} {
		got, err := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		require.NoError(t, err, id)
		assert.Equal(t, "A", got, id)
	}
	_, err := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("team")})
	var nf *types.ResourceNotFoundException
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, "Secrets Manager can't find the specified secret.", nf.ErrorMessage())
}

func TestDeletion(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }

	srv := awssmtest.NewServer(t, awssmtest.WithClock(clock))
	c := srv.Client()
	createSecret(t, c, "svc", "one")

	_, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("svc"), ForceDeleteWithoutRecovery: aws.Bool(true), RecoveryWindowInDays: aws.Int64(7)})
	require.Equal(t, "InvalidParameterException", apiCode(t, err))
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("svc"), RecoveryWindowInDays: aws.Int64(3)})
	require.Equal(t, "InvalidParameterException", apiCode(t, err))

	del, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("svc"), RecoveryWindowInDays: aws.Int64(7)})
	require.NoError(t, err)
	assert.Equal(t, now.Add(7*24*time.Hour), aws.ToTime(del.DeletionDate).UTC())

	// Scheduled: reads and writes are refused, DescribeSecret shows the date.
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc")})
	var ir *types.InvalidRequestException
	require.ErrorAs(t, err, &ir)
	assert.Contains(t, ir.ErrorMessage(), "marked for deletion")
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("svc"), SecretString: aws.String("two")})
	require.ErrorAs(t, err, &ir)
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("svc"), SecretString: aws.String("two")})
	require.ErrorAs(t, err, &ir)
	desc, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("svc")})
	require.NoError(t, err)
	assert.Equal(t, now.Add(7*24*time.Hour), aws.ToTime(desc.DeletedDate).UTC())

	// RestoreSecret cancels it.
	_, err = c.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String("svc")})
	require.NoError(t, err)
	got, err := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc")})
	require.NoError(t, err)
	assert.Equal(t, "one", got)

	// Once the recovery window is over, the secret is gone for good.
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("svc"), RecoveryWindowInDays: aws.Int64(7)})
	require.NoError(t, err)
	advance(7*24*time.Hour - time.Second)
	_, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("svc")})
	require.NoError(t, err, "still inside the window")
	advance(time.Second)
	_, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("svc")})
	var nf *types.ResourceNotFoundException
	require.ErrorAs(t, err, &nf)

	// Force deletion is immediate, and the name is free again.
	createSecret(t, c, "svc", "again")
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("svc"), ForceDeleteWithoutRecovery: aws.Bool(true)})
	require.NoError(t, err)
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc")})
	require.ErrorAs(t, err, &nf)
	createSecret(t, c, "svc", "third life")
}

func TestListSecretVersionIdsPaginates(t *testing.T) {
	srv := awssmtest.NewServer(t)
	c := srv.Client()
	createSecret(t, c, "svc", "v0")
	for i := range 4 {
		_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String("svc"), SecretString: aws.String("v"), VersionStages: []string{"label" + string(rune('a'+i))},
		})
		require.NoError(t, err)
	}
	var ids []string
	p := secretsmanager.NewListSecretVersionIdsPaginator(c, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("svc"), MaxResults: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		require.NoError(t, err)
		pages++
		for _, v := range out.Versions {
			ids = append(ids, aws.ToString(v.VersionId))
		}
	}
	assert.Equal(t, 3, pages)
	assert.Len(t, ids, 5)
}

func TestFaultsAndCounts(t *testing.T) {
	srv := awssmtest.NewServer(t, awssmtest.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }))
	c := srv.Client()
	a := createSecret(t, c, "a", "A")
	createSecret(t, c, "b", "B")

	// A fault on secret a, named by its ARN, hits requests naming it by
	// name, and leaves b alone.
	srv.FailNext(awssmtest.Match{SecretID: aws.ToString(a.ARN)}, awssmtest.AccessDenied, 2)
	for range 2 {
		_, err := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("a")})
		assert.Equal(t, "AccessDeniedException", apiCode(t, err))
		_, err = getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("b")})
		require.NoError(t, err)
	}
	_, err := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("a")})
	require.NoError(t, err, "the fault was for the next 2 requests only")

	// A fault on one operation.
	srv.FailNext(awssmtest.Match{Op: "DescribeSecret"}, awssmtest.DecryptionFailure, -1)
	_, err = getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("a")})
	require.NoError(t, err)
	for range 3 {
		_, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("a")})
		var df *types.DecryptionFailure
		require.ErrorAs(t, err, &df)
	}
	srv.ClearFaults()
	_, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("a")})
	require.NoError(t, err)

	assert.Equal(t, map[string]int{"CreateSecret": 2, "GetSecretValue": 6, "DescribeSecret": 4}, srv.Counts())
	assert.Equal(t, 6, srv.Count("GetSecretValue"))
	srv.ResetCounts()
	assert.Equal(t, 0, srv.Count("GetSecretValue"))

	// 5xx faults carry their status.
	srv.FailNext(awssmtest.Match{}, awssmtest.ServiceUnavailable, 1)
	_, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("a")})
	var re interface{ HTTPStatusCode() int }
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusServiceUnavailable, re.HTTPStatusCode())
}

func TestDelayHook(t *testing.T) {
	srv := awssmtest.NewServer(t)
	c := srv.Client()
	createSecret(t, c, "svc", "one")
	release := make(chan struct{})
	seen := make(chan awssmtest.RequestInfo, 1)
	srv.SetDelay(func(ctx context.Context, r awssmtest.RequestInfo) error {
		seen <- r
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc")})
		done <- err
	}()
	assert.Equal(t, awssmtest.RequestInfo{Op: "GetSecretValue", SecretID: "svc"}, receive(t, seen))
	select {
	case err := <-done:
		require.FailNow(t, "request finished while held", "%v", err)
	default:
	}
	close(release)
	require.NoError(t, receive(t, done))
}

func TestCloseReleasesHeldRequests(t *testing.T) {
	srv := awssmtest.Start()
	c := srv.NewClient(func(o *secretsmanager.Options) { o.Retryer = aws.NopRetryer{} })
	createSecret(t, c, "svc", "one")
	entered := make(chan struct{})
	srv.SetDelay(func(ctx context.Context, r awssmtest.RequestInfo) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	})
	done := make(chan error, 1)
	go func() {
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc")})
		done <- err
	}()
	receive(t, entered)
	srv.Close() // returns only once the held handler has
	require.Error(t, receive(t, done))
}

// rawRequest sends body to the server as operation op, signed by sign (or
// not at all when sign is nil), and returns the status and decoded body.
func rawRequest(t *testing.T, srv *awssmtest.Server, op, contentType string, body []byte, sign func(*http.Request, []byte)) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL()+"/", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Amz-Target", "secretsmanager."+op)
	req.Header.Set("Content-Type", contentType)
	if sign != nil {
		sign(req, body)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	return resp.StatusCode, out, resp.Header
}

func signer(akid, secret, service, region string) func(*http.Request, []byte) {
	return func(req *http.Request, body []byte) {
		sum := sha256.Sum256(body)
		err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}, req,
			hex.EncodeToString(sum[:]), service, region, time.Now())
		if err != nil {
			panic(err)
		}
	}
}

func TestWireProtocol(t *testing.T) {
	srv := awssmtest.NewServer(t)
	createSecret(t, srv.Client(), "svc", "one")
	good := signer(awssmtest.DefaultAccessKeyID, awssmtest.DefaultSecretAccessKey, "secretsmanager", "us-east-1")
	const json11 = "application/x-amz-json-1.1"
	body := []byte(`{"SecretId":"svc"}`)

	t.Run("success", func(t *testing.T) {
		status, out, h := rawRequest(t, srv, "GetSecretValue", json11, body, good)
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, json11, h.Get("Content-Type"))
		assert.NotEmpty(t, h.Get("X-Amzn-RequestId"))
		assert.Equal(t, "one", out["SecretString"])
		assert.IsType(t, float64(0), out["CreatedDate"], "timestamps are epoch seconds")
	})

	tests := []struct {
		name        string
		op, ct      string
		body        []byte
		sign        func(*http.Request, []byte)
		status      int
		code, inMsg string
	}{
		{"not found", "GetSecretValue", json11, []byte(`{"SecretId":"nope"}`), good, 400, "ResourceNotFoundException", "can't find"},
		{"unsigned", "GetSecretValue", json11, body, nil, 403, "MissingAuthenticationTokenException", "Missing Authentication Token"},
		{"another service's scope", "GetSecretValue", json11, body, signer(awssmtest.DefaultAccessKeyID, awssmtest.DefaultSecretAccessKey, "ssm", "us-east-1"), 400, "InvalidSignatureException", "'secretsmanager'"},
		{"another region's scope", "GetSecretValue", json11, body, signer(awssmtest.DefaultAccessKeyID, awssmtest.DefaultSecretAccessKey, "secretsmanager", "eu-west-1"), 400, "InvalidSignatureException", "region"},
		{"unknown access key", "GetSecretValue", json11, body, signer("AKIAOTHER", "x", "secretsmanager", "us-east-1"), 400, "UnrecognizedClientException", "security token"},
		{"wrong secret key", "GetSecretValue", json11, body, signer(awssmtest.DefaultAccessKeyID, "wrong", "secretsmanager", "us-east-1"), 400, "InvalidSignatureException", "signature we calculated"},
		{"body changed after signing", "GetSecretValue", json11, body, func(r *http.Request, _ []byte) {
			good(r, []byte(`{"SecretId":"other"}`))
		}, 400, "InvalidSignatureException", "signature we calculated"},
		{"basic auth instead of SigV4", "GetSecretValue", json11, body, func(r *http.Request, _ []byte) { r.SetBasicAuth("a", "b") }, 400, "IncompleteSignatureException", "AWS4-HMAC-SHA256"},
		{"unknown operation", "RotateSecret", json11, body, good, 400, "UnknownOperationException", "RotateSecret"},
		{"wrong content type", "GetSecretValue", "application/json", body, good, 400, "SerializationException", "Content-Type"},
		{"malformed body", "GetSecretValue", json11, []byte(`{"SecretId":`), good, 400, "SerializationException", "parsed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out, h := rawRequest(t, srv, tc.op, tc.ct, tc.body, tc.sign)
			assert.Equal(t, tc.status, status)
			assert.Equal(t, json11, h.Get("Content-Type"))
			assert.Equal(t, tc.code, out["__type"])
			assert.Contains(t, out["Message"], tc.inMsg)
		})
	}
}

func TestSDKSeesTypedErrors(t *testing.T) {
	srv := awssmtest.NewServer(t, awssmtest.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }))
	c := srv.Client()
	createSecret(t, c, "svc", "one")
	for _, tc := range []struct {
		fault awssmtest.Fault
		as    func(error) bool
	}{
		{awssmtest.DecryptionFailure, func(err error) bool { var e *types.DecryptionFailure; return errors.As(err, &e) }},
		{awssmtest.InternalServiceError, func(err error) bool { var e *types.InternalServiceError; return errors.As(err, &e) }},
		{awssmtest.Throttling, func(err error) bool {
			var e *smithy.GenericAPIError
			return errors.As(err, &e) && e.Code == "ThrottlingException"
		}},
		{awssmtest.AccessDenied, func(err error) bool {
			var e *smithy.GenericAPIError
			return errors.As(err, &e) && e.Code == "AccessDeniedException"
		}},
	} {
		t.Run(tc.fault.Code, func(t *testing.T) {
			srv.FailNext(awssmtest.Match{}, tc.fault, 1)
			_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc")})
			require.Error(t, err)
			assert.True(t, tc.as(err), "%T: %v", err, err)
			assert.Contains(t, err.Error(), tc.fault.Message)
		})
	}
}

func TestLatencyReturnsWhenContextEnds(t *testing.T) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	err := awssmtest.Latency(time.Hour)(c, awssmtest.RequestInfo{Op: "GetSecretValue"})
	require.ErrorIs(t, err, context.Canceled)
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
