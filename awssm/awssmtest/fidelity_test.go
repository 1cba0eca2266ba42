package awssmtest_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider/awssm/awssmtest"
)

// fakeClock is a clock a test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// A secret created without a value gets AWSCURRENT on its first version,
// even when PutSecretValue asks for AWSPENDING only.
func TestServerFirstVersionIsAlwaysCurrent(t *testing.T) {
	c := awssmtest.NewServer(t).Client()
	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("empty")})
	require.NoError(t, err)
	out, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("empty"),
		SecretString: aws.String("v1"), VersionStages: []string{"AWSPENDING"}})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"AWSCURRENT", "AWSPENDING"}, out.VersionStages)
	got, err := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("empty")})
	require.NoError(t, err)
	assert.Equal(t, "v1", got)
	out, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("empty"),
		SecretString: aws.String("v2"), VersionStages: []string{"AWSPENDING"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"AWSPENDING"}, out.VersionStages, "only the first version gets AWSCURRENT unasked")
}

// Versions younger than 24 hours are never pruned: past 100 versions a new
// one is refused until old deprecated ones can go.
func TestServerVersionQuotaSparesYoungVersions(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := awssmtest.NewServer(t, awssmtest.WithClock(clock.Now)).NewClient(func(o *secretsmanager.Options) {
		o.Retryer = awssmtest.InstantRetryer(1)
	})
	first := createSecret(t, c, "busy", "v0")
	put := func(v string) error {
		_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("busy"), SecretString: aws.String(v)})
		return err
	}
	for i := 1; i < 100; i++ {
		require.NoError(t, put("v"))
	}
	err := put("one too many")
	var limit *types.LimitExceededException
	require.ErrorAs(t, err, &limit, "100 versions, none older than 24 h")
	assert.Len(t, listVersions(t, c, "busy", true), 100)

	clock.Add(25 * time.Hour)
	require.NoError(t, put("now the oldest deprecated one goes"))
	ids := listVersions(t, c, "busy", true)
	assert.Len(t, ids, 100)
	assert.NotContains(t, ids, aws.ToString(first.VersionId))
}

// A session token that does not belong to the credential is refused, as AWS
// refuses it; a temporary credential needs its own.
func TestServerSessionToken(t *testing.T) {
	temp := awssmtest.NewServer(t, awssmtest.WithSessionToken("session-of-the-credential"))
	_, err := temp.Client().ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	require.NoError(t, err, "the server's own client carries the token")
	for _, tok := range []string{"", "stray"} {
		_, err = temp.NewClient(func(o *secretsmanager.Options) {
			o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: awssmtest.DefaultAccessKeyID, SecretAccessKey: awssmtest.DefaultSecretAccessKey, SessionToken: tok}, nil
			})
		}).ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
		assert.Equal(t, "UnrecognizedClientException", apiCode(t, err), "token %q", tok)
	}

	// A long-term key (no SessionToken) refuses any session token at all.
	long := awssmtest.NewServer(t)
	_, err = long.Client().ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	require.NoError(t, err, "a long-term key without a token is served")
	_, err = long.NewClient(func(o *secretsmanager.Options) {
		o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: awssmtest.DefaultAccessKeyID, SecretAccessKey: awssmtest.DefaultSecretAccessKey, SessionToken: "stray"}, nil
		})
	}).ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	assert.Equal(t, "UnrecognizedClientException", apiCode(t, err), "a stray token on a long-term key")
}

// CreateSecret keeps its tags or refuses them; it never drops them.
func TestServerTagsKeptOrRefused(t *testing.T) {
	c := awssmtest.NewServer(t).Client()
	tags := []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}}
	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("tagged"), SecretString: aws.String("x"), Tags: tags})
	require.NoError(t, err)
	desc, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("tagged")})
	require.NoError(t, err)
	assert.Equal(t, tags, desc.Tags)
	list, err := c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{Filters: []types.Filter{{Key: types.FilterNameStringTypeTagKey, Values: []string{"te"}}}})
	require.NoError(t, err)
	require.Len(t, list.SecretList, 1)
	assert.Equal(t, tags, list.SecretList[0].Tags)

	for name, bad := range map[string][]types.Tag{
		"reserved":  {{Key: aws.String("aws:owner"), Value: aws.String("x")}},
		"duplicate": {{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("a"), Value: aws.String("2")}},
		"long":      {{Key: aws.String(strings.Repeat("k", 129)), Value: aws.String("x")}},
	} {
		_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("x"), Tags: bad})
		var param *types.InvalidParameterException
		assert.ErrorAs(t, err, &param, name)
		_, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		var nf *types.ResourceNotFoundException
		assert.ErrorAs(t, err, &nf, "a refused CreateSecret creates nothing")
	}
}

// A chosen address is listened on; one in use is an error from New.
func TestServerChosenAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	srv := awssmtest.NewServer(t, awssmtest.WithAddr(addr))
	assert.Equal(t, "http://"+addr, srv.URL())
	createSecret(t, srv.Client(), "here", "x")
	_, err = awssmtest.New(awssmtest.WithAddr(addr))
	assert.ErrorContains(t, err, "address already in use")
}

func control(t *testing.T, srv *awssmtest.Server, cmd, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(srv.URL()+awssmtest.ControlPath+cmd, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	out := map[string]any{}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// Faults and rotation are reachable over HTTP on the control path.
func TestServerControlEndpoints(t *testing.T) {
	srv := awssmtest.NewServer(t)
	c := srv.NewClient(func(o *secretsmanager.Options) { o.Retryer = awssmtest.InstantRetryer(1) })
	v1 := createSecret(t, c, "ctl", "v1")
	get := &secretsmanager.GetSecretValueInput{SecretId: aws.String("ctl")}

	code, _ := control(t, srv, "fail", `{"op":"GetSecretValue","secretId":"ctl","fault":"throttle","count":2}`)
	require.Equal(t, http.StatusOK, code)
	for range 2 {
		_, err := c.GetSecretValue(ctx, get)
		assert.Equal(t, "ThrottlingException", apiCode(t, err))
	}
	_, err := getValue(t, c, get)
	require.NoError(t, err, "two, then healthy")

	_, out := control(t, srv, "rotate", `{"SecretId":"ctl","SecretString":"v2"}`)
	got, err := getValue(t, c, get)
	require.NoError(t, err)
	assert.Equal(t, "v2", got)
	control(t, srv, "stage", `{"SecretId":"ctl","VersionStage":"AWSCURRENT","MoveToVersionId":"`+
		aws.ToString(v1.VersionId)+`","RemoveFromVersionId":"`+out["VersionId"].(string)+`"}`)
	got, _ = getValue(t, c, get)
	assert.Equal(t, "v1", got, "the stage moved back")

	control(t, srv, "revoke", `{"revoked":true}`)
	_, err = c.GetSecretValue(ctx, get)
	assert.Equal(t, "UnrecognizedClientException", apiCode(t, err))
	control(t, srv, "clear", `{}`)

	control(t, srv, "fail", `{"op":"GetSecretValue","fault":"hang"}`)
	hctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = c.GetSecretValue(hctx, get)
	require.ErrorIs(t, err, context.DeadlineExceeded, "held until the client gave up")

	code, _ = control(t, srv, "fail", `{"fault":"nonsense"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = control(t, srv, "nowhere", `{}`)
	assert.Equal(t, http.StatusNotFound, code)
	resp, err := http.Get(srv.URL() + awssmtest.ControlPath + "counts")
	require.NoError(t, err)
	defer resp.Body.Close()
	var counts map[string]int
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&counts))
	assert.Equal(t, srv.Count("GetSecretValue"), counts["GetSecretValue"])
}

// UpdateSecret and BatchGetSecretValue through the Go SDK, as its caching
// libraries call them.
func TestServerUpdateSecretAndBatchGet(t *testing.T) {
	c := awssmtest.NewServer(t).Client()
	createSecret(t, c, "a", "a1")
	createSecret(t, c, "b", "b1")
	up, err := c.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("a"), SecretString: aws.String("a2")})
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{aws.ToString(up.VersionId): {"AWSCURRENT"}}, onlyCurrent(stages(t, c, "a")))
	out, err := c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"a", "b", "gone"}})
	require.NoError(t, err)
	require.Len(t, out.SecretValues, 2)
	assert.Equal(t, "a2", aws.ToString(out.SecretValues[0].SecretString))
	require.Len(t, out.Errors, 1)
	assert.Equal(t, "ResourceNotFoundException", aws.ToString(out.Errors[0].ErrorCode))
	_, err = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{})
	var param *types.InvalidParameterException
	assert.ErrorAs(t, err, &param)
}

func onlyCurrent(m map[string][]string) map[string][]string {
	out := map[string][]string{}
	for id, l := range m {
		for _, s := range l {
			if s == "AWSCURRENT" {
				out[id] = []string{s}
			}
		}
	}
	return out
}
