package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest/standin"
)

func TestListsOrganizations(t *testing.T) {
	key := standin.NewKey(keyprovider.Tesseral)
	api := standin.New(t, standin.WithKeys(key))
	env := map[string]string{"TESSERAL_API_KEY": key}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }

	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-base-url", api.BaseURL()}, lookup, &out))
	for _, o := range standin.DefaultOrganizations {
		assert.Contains(t, out.String(), o.ID+"\t"+o.DisplayName)
	}

	api.Rotate(standin.NewKey(keyprovider.Tesseral), 0) // our key is revoked
	err := run(context.Background(), []string{"-base-url", api.BaseURL()}, lookup, &out)
	var apiErr *keyprovider.APIError
	require.True(t, errors.As(err, &apiErr), "got %v", err)
	assert.Equal(t, 401, apiErr.StatusCode)
	assert.False(t, strings.Contains(err.Error(), key), "the error shows the key") // a testify diff would print it
}

func TestADeniedKeyIsErrPermission(t *testing.T) {
	key := standin.NewKey(keyprovider.Tesseral)
	api := standin.New(t, standin.WithKeys(key))
	api.Deny(key, standin.RouteOrganizations) // valid, but the plan does not cover the call
	env := map[string]string{"TESSERAL_API_KEY": key}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }

	var out bytes.Buffer
	err := run(context.Background(), []string{"-base-url", api.BaseURL()}, lookup, &out)
	require.ErrorIs(t, err, keyprovider.ErrPermission)
	assert.Empty(t, out.String())
	assert.Equal(t, 1, api.Stats().Denied)
	assert.False(t, strings.Contains(err.Error(), key), "the error shows the key") // a testify diff would print it
}

// TestBaseURLFromTheEnvironment: without -base-url, TESSERAL_BASE_URL points
// the example at the stand-in (as it would at keyprov proxy); the flag wins
// over it, and a URL that would send the key in clear is refused before
// any request.
func TestBaseURLFromTheEnvironment(t *testing.T) {
	key := standin.NewKey(keyprovider.Tesseral)
	api := standin.New(t, standin.WithKeys(key))
	env := map[string]string{"TESSERAL_API_KEY": key, "TESSERAL_BASE_URL": api.BaseURL()}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }

	var out bytes.Buffer
	require.NoError(t, run(context.Background(), nil, lookup, &out))
	assert.Contains(t, out.String(), standin.DefaultOrganizations[0].ID)
	assert.Equal(t, 1, api.Stats().Requests)

	env["TESSERAL_BASE_URL"] = "http://api.example.com/v1"
	err := run(context.Background(), nil, lookup, &out)
	require.ErrorIs(t, err, keyprovider.ErrHostNotAllowed)
	assert.Contains(t, err.Error(), "TESSERAL_BASE_URL")
	require.NoError(t, run(context.Background(), []string{"-base-url", api.BaseURL()}, lookup, &out), "the flag wins")
	assert.Equal(t, 2, api.Stats().Requests)
}
