package awssmtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider/awssm/awssmtest"
)

// requireClient skips the test when tool is not installed, unless
// KEYPROVIDER_REQUIRE_CLIENTS=1 (scripts/test.sh sets it) makes that a
// failure.
func requireClient(t *testing.T, tool string, probe ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, tool, probe...).Run(); err != nil {
		if os.Getenv("KEYPROVIDER_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("%s %v: %v (KEYPROVIDER_REQUIRE_CLIENTS=1)", tool, probe, err)
		}
		t.Skipf("%s is not usable here (%v); set KEYPROVIDER_REQUIRE_CLIENTS=1 to fail instead", tool, err)
	}
}

// clientSession is the session token of the servers the clients talk to.
const clientSession = "FwoGZXIvYXdzEMULATOR0session0token"

// clientEnv is the whole environment a non-Go client gets: the emulator's
// endpoint and credentials, no shared config, no instance metadata.
func clientEnv(t *testing.T, srv *awssmtest.Server) []string {
	home := t.TempDir()
	return []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + srv.URL(),
		"AWS_ACCESS_KEY_ID=" + awssmtest.DefaultAccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + awssmtest.DefaultSecretAccessKey,
		"AWS_SESSION_TOKEN=" + clientSession,
		"AWS_REGION=" + srv.Region(), "AWS_DEFAULT_REGION=" + srv.Region(),
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard",
		"AWSSMTEST_CONTROL_URL=" + srv.URL() + awssmtest.ControlPath,
	}
}

// boto3 drives every operation (test/python/awssm_boto3.py), checking each
// response against botocore's service model.
func TestBoto3DrivesEveryOperation(t *testing.T) {
	requireClient(t, "python3", "-c", "import boto3")
	srv := awssmtest.NewServer(t, awssmtest.WithSessionToken(clientSession))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", "../../test/python/awssm_boto3.py")
	cmd.Env = clientEnv(t, srv)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "ok ")
}

type awsCLI struct {
	t   *testing.T
	env []string
}

// run runs "aws secretsmanager args..." and decodes its JSON output; code
// is the error code the command must fail with ("" for success).
func (a awsCLI) run(code string, args ...string) map[string]any {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "aws", append([]string{"secretsmanager", "--output", "json"}, args...)...)
	cmd.Env = a.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if code != "" {
		require.Error(a.t, err, "aws %v: %s", args, stdout.String())
		assert.Contains(a.t, stderr.String(), "("+code+")", "aws %v", args)
		return nil
	}
	require.NoError(a.t, err, "aws %v: %s", args, stderr.String())
	out := map[string]any{}
	if stdout.Len() > 0 {
		require.NoError(a.t, json.Unmarshal(stdout.Bytes(), &out), "%s", stdout.String())
	}
	return out
}

// The AWS CLI drives every operation the emulator serves, with the
// arguments and pagination the CLI itself adds.
func TestCLIDrivesEveryOperation(t *testing.T) {
	requireClient(t, "aws", "--version")
	srv := awssmtest.NewServer(t, awssmtest.WithSessionToken(clientSession))
	aws := awsCLI{t: t, env: clientEnv(t, srv)}

	made := aws.run("", "create-secret", "--name", "cli/one", "--tags", "Key=team,Value=payments")
	assert.NotContains(t, made, "VersionId", "no value, no version")
	first := aws.run("", "put-secret-value", "--secret-id", "cli/one", "--secret-string", "v1", "--version-stages", "AWSPENDING")
	assert.ElementsMatch(t, []any{"AWSCURRENT", "AWSPENDING"}, first["VersionStages"], "a first version is AWSCURRENT too")
	assert.Equal(t, "v1", aws.run("", "get-secret-value", "--secret-id", made["ARN"].(string))["SecretString"])
	second := aws.run("", "update-secret", "--secret-id", "cli/one", "--secret-string", "v2", "--description", "d")
	assert.Equal(t, "v2", aws.run("", "get-secret-value", "--secret-id", "cli/one", "--version-id", second["VersionId"].(string))["SecretString"])
	aws.run("", "update-secret-version-stage", "--secret-id", "cli/one", "--version-stage", "AWSCURRENT",
		"--move-to-version-id", first["VersionId"].(string), "--remove-from-version-id", second["VersionId"].(string))
	assert.Equal(t, "v1", aws.run("", "get-secret-value", "--secret-id", "cli/one")["SecretString"])
	desc := aws.run("", "describe-secret", "--secret-id", "cli/one")
	assert.Equal(t, []any{map[string]any{"Key": "team", "Value": "payments"}}, desc["Tags"])
	assert.Equal(t, "d", desc["Description"])
	versions := aws.run("", "list-secret-version-ids", "--secret-id", "cli/one", "--max-results", "1")
	require.Len(t, versions["Versions"], 1)
	rest := aws.run("", "list-secret-version-ids", "--secret-id", "cli/one", "--next-token", versions["NextToken"].(string))
	assert.Len(t, rest["Versions"], 1)
	aws.run("", "create-secret", "--name", "cli/two", "--secret-string", "two")
	list := aws.run("", "list-secrets", "--page-size", "1", "--filters", "Key=name,Values=cli/")
	assert.Len(t, list["SecretList"], 2)
	batch := aws.run("", "batch-get-secret-value", "--secret-id-list", "cli/one", "cli/two", "nope")
	assert.Len(t, batch["SecretValues"], 2)
	assert.Equal(t, "ResourceNotFoundException", batch["Errors"].([]any)[0].(map[string]any)["ErrorCode"])
	aws.run("", "delete-secret", "--secret-id", "cli/two", "--recovery-window-in-days", "7")
	aws.run("InvalidRequestException", "get-secret-value", "--secret-id", "cli/two")
	aws.run("", "restore-secret", "--secret-id", "cli/two")
	aws.run("", "delete-secret", "--secret-id", "cli/two", "--force-delete-without-recovery")
	aws.run("ResourceNotFoundException", "describe-secret", "--secret-id", "cli/two")
	aws.run("InvalidParameterException", "create-secret", "--name", "cli/three", "--tags", "Key=aws:reserved,Value=x")

	srv.FailNext(awssmtest.Match{Op: "GetSecretValue"}, awssmtest.Throttling, 1)
	aws.run("ThrottlingException", "get-secret-value", "--secret-id", "cli/one")
	aws.env = append(aws.env, "AWS_SESSION_TOKEN=FwoGZXIvYXdzEXAMPLE") // the last one wins
	aws.run("UnrecognizedClientException", "get-secret-value", "--secret-id", "cli/one")
}
