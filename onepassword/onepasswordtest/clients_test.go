package onepasswordtest_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	op "github.com/1Password/connect-sdk-go/onepassword"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

// rfcSecret is the RFC 6238 test key "12345678901234567890" in base32; at
// Unix time 1111111109 its 8-digit SHA-1 code is 07081804.
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

// requireNodeSDK skips the test when node or the SDK (installed by
// scripts/test.sh with npm ci --prefix test/node-connect) is missing,
// unless KEYPROVIDER_REQUIRE_CLIENTS=1 makes that a failure.
func requireNodeSDK(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat("../../test/node-connect/node_modules/@1password/connect/package.json")
	}
	if err != nil {
		if os.Getenv("KEYPROVIDER_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("the JS Connect SDK is not usable: %v (KEYPROVIDER_REQUIRE_CLIENTS=1)", err)
		}
		t.Skipf("node or @1password/connect missing (%v): run npm ci --prefix test/node-connect", err)
	}
}

// The official JavaScript Connect SDK does every read it has, and its item
// update, against the emulator (test/node-connect/connect.test.js).
func TestConnectJSSDK(t *testing.T) {
	requireNodeSDK(t)
	srv := onepasswordtest.NewServer(t, onepasswordtest.WithClock(func() time.Time { return time.Unix(1111111109, 0) }))
	fx := map[string]string{"prod": srv.AddVault("prod"), "staging": srv.AddVault("staging"), "totp": "081804"}
	for _, title := range []string{"tessera", "tesseral"} {
		it, err := srv.PutItem(fx["prod"], op.Item{Title: title, Category: op.ApiCredential, Fields: []*op.ItemField{
			{ID: "credential", Label: "credential", Type: op.FieldTypeConcealed, Value: title + "-v1"}}})
		require.NoError(t, err)
		fx[title] = it.ID
	}
	it, err := srv.PutItem(fx["prod"], op.Item{Title: "otp", Category: op.Login, Fields: []*op.ItemField{
		{ID: "username", Label: "username", Type: op.FieldTypeString, Value: "ops"},
		{ID: "TOTP_1", Label: "one-time password", Type: op.FieldTypeOTP, Value: "otpauth://totp/ops?secret=" + rfcSecret}}})
	require.NoError(t, err)
	fx["otp"] = it.ID
	fixture, err := json.Marshal(fx)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "connect.test.js")
	cmd.Dir = "../../test/node-connect"
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"OP_CONNECT_HOST=" + srv.URL, "OP_CONNECT_TOKEN=" + srv.Token, "CONNECT_FIXTURE=" + string(fixture)}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "# pass 7")
	require.Contains(t, string(out), "# fail 0")
}
