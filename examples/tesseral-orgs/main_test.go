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
