package env_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/env"
)

// An environment given as a map, as a test or a supervisor would inject it.
func lookupIn(vars map[string]string) env.Option {
	return env.WithLookupEnv(func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	})
}

func ExampleForService() {
	vars := map[string]string{"TESSERA_API_KEY": "sk-tessera-Tj7mZJ8X2qKmRnGYpA4L\n"}
	p := env.ForService(keyprovider.Tessera, lookupIn(vars))

	k, err := p.Fetch(context.Background())
	fmt.Println(k, err) // trimmed, checked, and printed as its fingerprint

	// Every Fetch reads the variable again.
	vars["TESSERA_API_KEY"] = "tesseral_secret_key_abc"
	_, err = p.Fetch(context.Background())
	fmt.Println(err)

	delete(vars, "TESSERA_API_KEY")
	_, err = p.Fetch(context.Background())
	fmt.Println(errors.Is(err, keyprovider.ErrNotFound))
	// Output:
	// sk-tessera-…ed658205572f <nil>
	// keyprovider: env TESSERA_API_KEY: invalid tessera key: does not start with "sk-tessera-" (it looks like a tesseral key)
	// true
}

// A key in a file, as Docker and Kubernetes mount secrets: point NAME_FILE at
// it.
func ExampleNew_file() {
	dir, err := os.MkdirTemp("", "secrets")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "tessera")
	if err := os.WriteFile(path, []byte("sk-tessera-Tj7mZJ8X2qKmRnGYpA4L\n"), 0o600); err != nil {
		panic(err)
	}

	p := env.New("TESSERA_API_KEY", env.WithService(keyprovider.Tessera),
		lookupIn(map[string]string{"TESSERA_API_KEY_FILE": path}))
	k, err := p.Fetch(context.Background())
	fmt.Println(k, err)
	// Output:
	// sk-tessera-…ed658205572f <nil>
}

func ExampleConflictError() {
	p := env.New("API_KEY", lookupIn(map[string]string{
		"API_KEY":      "sk-tessera-one",
		"API_KEY_FILE": "/run/secrets/api_key",
	}))
	_, err := p.Fetch(context.Background())
	var conflict *env.ConflictError
	fmt.Println(errors.As(err, &conflict), errors.Is(err, keyprovider.ErrInvalidKey))
	fmt.Println(err)
	// Output:
	// true true
	// keyprovider: env API_KEY: invalid key: API_KEY and API_KEY_FILE are both set; set only one
}
