package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
)

const devKey = "sk-tessera-perEnvDEV0123456789"
const prodKey = "sk-tessera-perEnvPROD0123456789"

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) { v, ok := env[name]; return v, ok }
}

func TestDevReadsTheEnvironment(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), lookupIn(map[string]string{"TESSERA_API_KEY": devKey}), &out))
	assert.Contains(t, out.String(), keyprovider.NewKey(devKey, "").Fingerprint())
	assert.Contains(t, out.String(), "literal key")
	assert.False(t, strings.Contains(out.String(), devKey), "the output shows the key") // a testify diff would print it
}

func TestProdReadsVault(t *testing.T) {
	addr, token := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN")
	if addr == "" || token == "" {
		if os.Getenv("KEYPROVIDER_REQUIRE_VAULT") == "1" {
			t.Fatal("KEYPROVIDER_REQUIRE_VAULT=1 but VAULT_ADDR/VAULT_TOKEN are not set")
		}
		t.Skip("no Vault dev server (make test starts one)")
	}
	c, err := api.NewClient(api.DefaultConfig())
	require.NoError(t, err)
	_, err = c.KVv2("secret").Put(context.Background(), "per-environment/prod/tessera", map[string]any{"api_key": prodKey})
	require.NoError(t, err)

	var out bytes.Buffer
	prod := map[string]string{
		"TESSERA_API_KEY": "vault://secret/per-environment/prod/tessera#api_key",
		"VAULT_ADDR":      addr,
		"VAULT_TOKEN":     token,
	}
	require.NoError(t, run(context.Background(), lookupIn(prod), &out))
	got := out.String()
	assert.Contains(t, got, keyprovider.NewKey(prodKey, "").Fingerprint())
	assert.Contains(t, got, "vault://secret/per-environment/prod/tessera#api_key")
	assert.False(t, strings.Contains(got, prodKey) || strings.Contains(got, token))
}
