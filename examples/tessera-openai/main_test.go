package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest/standin"
)

func TestEmbeddingThroughOpenAISDK(t *testing.T) {
	key := standin.NewKey(keyprovider.Tessera)
	api := standin.New(t, standin.WithKeys(key))
	env := map[string]string{"TESSERA_API_KEY": key}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }

	var out bytes.Buffer
	if err := run(context.Background(), []string{"-base-url", api.BaseURL(), "-input", "hi"}, lookup, &out); err != nil {
		t.Fatal(err)
	}
	if want := "8-dimension embedding of \"hi\""; !strings.Contains(out.String(), want) {
		t.Errorf("output %q lacks %q", out.String(), want)
	}

	// After a rotation (the stand-in takes only the new key, the variable
	// holds it), the SDK's calls carry the new key.
	next := standin.NewKey(keyprovider.Tessera)
	api.Rotate(next, 0)
	env["TESSERA_API_KEY"] = next
	out.Reset()
	if err := run(context.Background(), []string{"-base-url", api.BaseURL()}, lookup, &out); err != nil {
		t.Fatal(err)
	}
	if st := api.Stats(); st.LastAccepted != keyprovider.NewKey(next, "").Fingerprint() {
		t.Errorf("last accepted key %s, want the rotated one", st.LastAccepted)
	}
}

// TestBaseURLFromTheEnvironment: without -base-url, TESSERA_BASE_URL points
// the SDK at the stand-in (as it would at keyprov proxy); a URL that would
// send the key in clear is refused before any request.
func TestBaseURLFromTheEnvironment(t *testing.T) {
	key := standin.NewKey(keyprovider.Tessera)
	api := standin.New(t, standin.WithKeys(key))
	env := map[string]string{"TESSERA_API_KEY": key, "TESSERA_BASE_URL": api.BaseURL()}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }

	var out bytes.Buffer
	if err := run(context.Background(), []string{"-input", "hi"}, lookup, &out); err != nil {
		t.Fatal(err)
	}
	if want := "8-dimension embedding of \"hi\""; !strings.Contains(out.String(), want) {
		t.Errorf("output %q lacks %q", out.String(), want)
	}
	if st := api.Stats(); st.Requests != 1 {
		t.Errorf("the stand-in saw %d requests, want 1", st.Requests)
	}

	env["TESSERA_BASE_URL"] = "http://api.example.com/v1"
	err := run(context.Background(), nil, lookup, &out)
	if !errors.Is(err, keyprovider.ErrHostNotAllowed) || !strings.Contains(err.Error(), "TESSERA_BASE_URL") {
		t.Errorf("plain HTTP off loopback: %v, want ErrHostNotAllowed naming TESSERA_BASE_URL", err)
	}
}
