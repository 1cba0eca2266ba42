package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
)

func TestServiceBaseURL(t *testing.T) {
	env := mapEnv(map[string]string{"TESSERA_BASE_URL": "http://127.0.0.1:8787/v1"})
	tests := []struct {
		name, flag string
		env        lookupFunc
		want, msg  string
	}{
		{name: "the flag wins", flag: "https://proxy.example/v1", env: env, want: "https://proxy.example/v1"},
		{name: "a blank flag is not given", flag: "  ", env: env, want: "http://127.0.0.1:8787/v1"},
		{name: "the variable", env: env, want: "http://127.0.0.1:8787/v1"},
		{name: "the service's", env: mapEnv(nil), want: keyprovider.Tessera.BaseURL},
		{name: "a bad flag is named", flag: "http://api.example.com/v1", env: env, msg: "keyprovider: --upstream: the key goes only over HTTPS"},
		{name: "a bad variable is named", env: mapEnv(map[string]string{"TESSERA_BASE_URL": "https://u:p@x.example/v1"}), msg: "keyprovider: TESSERA_BASE_URL: a URL with credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := serviceBaseURL(keyprovider.Tessera, "--upstream", tt.flag, tt.env)
			if tt.msg != "" {
				require.ErrorIs(t, err, keyprovider.ErrHostNotAllowed)
				assert.Contains(t, err.Error(), tt.msg)
				assert.NotContains(t, err.Error(), "u:p")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, u.String())
		})
	}
}
