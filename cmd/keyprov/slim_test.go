package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
)

// slimTags build a keyprov without any backend.
var slimTags = []string{"keyprov_no_awssm", "keyprov_no_onepassword", "keyprov_no_vault"}

// backendSDKs are the packages a keyprov built with slimTags must not link.
var backendSDKs = []string{
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager",
	"github.com/1password/onepassword-sdk-go",
	"github.com/tetratelabs/wazero",
	"github.com/1Password/connect-sdk-go/connect",
	"github.com/1Password/connect-sdk-go/onepassword",
	"github.com/hashicorp/vault/api",
	"github.com/keyprovider/keyprovider/awssm",
	"github.com/keyprovider/keyprovider/onepassword",
	"github.com/keyprovider/keyprovider/vault",
}

// TestSlimBuild builds keyprov without any backend and runs it as an
// operator would: a reference to an excluded backend fails saying how the
// binary was built, a file:// one resolves, and none of the SDKs is linked.
func TestSlimBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a keyprov binary")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "keyprov")
	require.NoError(t, buildKeyprov(ctx, bin, slimTags...))

	t.Run("excluded backend", func(t *testing.T) {
		for ref, tag := range map[string]string{
			"vault://secret/data/x#key":     "keyprov_no_vault",
			"awssm://prod/tessera":          "keyprov_no_awssm",
			"op://Infra/Tessera/credential": "keyprov_no_onepassword",
			"VAULT://secret/data/x#key":     "keyprov_no_vault",
		} {
			got := execBin(t, bin, map[string]string{"TESSERA_API_KEY": ref}, "check", "--service", "tessera")
			out := got.stdout + got.stderr
			assert.Equal(t, exitFail, got.code, "%s:\n%s", ref, out)
			assert.Contains(t, out, "this keyprov was built with -tags "+tag, ref)
			assert.NotContains(t, out, "add import", "%s: the hint for a program's author", ref)
			assert.NotContains(t, out, "panic", ref)
		}
	})

	t.Run("file", func(t *testing.T) {
		key := newTesseraKey()
		file := filepath.Join(t.TempDir(), "tessera")
		require.NoError(t, os.WriteFile(file, []byte(key+"\n"), 0o600))
		got := execBin(t, bin, map[string]string{"TESSERA_API_KEY": "file://" + file}, "check", "--service", "tessera")
		require.Equal(t, exitOK, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
		assert.Contains(t, got.stdout, "OK")
		assert.Contains(t, got.stdout, fp(key))
		assert.NotContains(t, got.stdout+got.stderr, key[len(key)-16:], "a key was printed")
	})

	t.Run("exec", func(t *testing.T) {
		// Any variable, not only a service's: were vault:// passed through
		// as http:// is, the program would get the reference as its value.
		got := execBin(t, bin, map[string]string{"DB_PASSWORD": "vault://secret/data/db#password"}, "exec", "--", "true")
		assert.Equal(t, 125, got.code, got.stderr)
		assert.Contains(t, got.stderr, "this keyprov was built with -tags keyprov_no_vault")
	})

	t.Run("emulate", func(t *testing.T) {
		got := execBin(t, bin, nil, "emulate")
		assert.Equal(t, exitUsage, got.code, got.stderr)
		assert.Contains(t, got.stderr, "keyprov_no_awssm,keyprov_no_onepassword")
	})

	t.Run("deps", func(t *testing.T) {
		assert.Empty(t, linkedOf(ctx, t, slimTags, backendSDKs...))
		// Each tag alone leaves its own SDK out.
		for tag, sdks := range map[string][]string{
			"keyprov_no_awssm":       {"github.com/aws/aws-sdk-go-v2/service/secretsmanager", "github.com/keyprovider/keyprovider/awssm"},
			"keyprov_no_onepassword": {"github.com/1password/onepassword-sdk-go", "github.com/tetratelabs/wazero", "github.com/1Password/connect-sdk-go/connect", "github.com/keyprovider/keyprovider/onepassword"},
			"keyprov_no_vault":       {"github.com/hashicorp/vault/api", "github.com/keyprovider/keyprovider/vault"},
		} {
			assert.Empty(t, linkedOf(ctx, t, []string{tag}, sdks...))
		}
	})
}

// linkedOf returns those of pkgs a keyprov built with tags links, by go
// list -deps.
func linkedOf(ctx context.Context, t *testing.T, tags []string, pkgs ...string) []string {
	t.Helper()
	out, err := exec.CommandContext(ctx, "go", "list", "-deps", "-tags", strings.Join(tags, ","), ".").Output()
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/keyprovider/keyprovider", "go list lists the dependencies")
	var linked []string
	for _, p := range pkgs {
		if slices.Contains(deps, p) {
			linked = append(linked, "-tags "+strings.Join(tags, ",")+" links "+p)
		}
	}
	return linked
}

// TestSlimBuildHint: the error of a reference whose scheme is not linked
// names the build tag only for a scheme this build excludes, and stays the
// library's error.
func TestSlimBuildHint(t *testing.T) {
	saved := excludedBackends
	t.Cleanup(func() { excludedBackends = saved })
	excludedBackends = map[string]string{"vault": "keyprov_no_vault"}

	r := keyprovider.NewResolver() // no scheme registered
	_, err := r.Parse("Vault://secret/data/x#key")
	require.ErrorIs(t, err, keyprovider.ErrSchemeNotLinked)
	err = withBuildHint(err)
	require.ErrorIs(t, err, keyprovider.ErrSchemeNotLinked)
	require.ErrorIs(t, err, keyprovider.ErrInvalidKey)
	var re *keyprovider.RefError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "this keyprov was built with -tags keyprov_no_vault, without the vault:// backend: use a keyprov built without that tag", re.Reason)

	_, err = r.Parse("awssm://prod/tessera") // not linked, but not excluded either
	before := err.Error()
	assert.Equal(t, before, withBuildHint(err).Error())
	assert.NotContains(t, before, "built with")

	assert.NoError(t, withBuildHint(nil))
	other := keyprovider.ErrNotFound
	assert.Equal(t, other, withBuildHint(other))
}
