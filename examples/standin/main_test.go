package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest/standin"
)

func TestServesTheKeysOfTheEnvironmentUntilStopped(t *testing.T) {
	defer goleak.VerifyNone(t)
	key := standin.NewKey(keyprovider.Tessera)
	env := map[string]string{"TESSERA_API_KEY": key}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var out bytes.Buffer // read only after run has returned
	var status int
	err := run(ctx, lookup, &out, func(api *standin.Server) {
		defer cancel() // one request, then stop
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.BaseURL()+"/models", nil)
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+key)
		if resp, err := api.Client().Do(req); err == nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if status != http.StatusOK {
		t.Errorf("a request with the key: %d, want 200", status)
	}
	for _, want := range []string{"accepting the TESSERA_API_KEY key " + standin.Fingerprint(key), "stand-in at http://", "served 1 requests: 1 accepted"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, strings.TrimPrefix(key, keyprovider.Tessera.KeyPrefix)) {
		t.Error("the output shows the key")
	}
}

func TestRefusesToStartWithoutAValidKey(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr error // nil: any error
	}{
		{"no key", map[string]string{}, nil},
		{"a key of the wrong service", map[string]string{"TESSERAL_API_KEY": "sk-tessera-notTesseral0123"}, keyprovider.ErrInvalidKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(name string) (string, bool) { v, ok := tc.env[name]; return v, ok }
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, lookup, &bytes.Buffer{}, nil)
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("run = %v, want an error matching %v", err, tc.wantErr)
			}
		})
	}
}
