package keyprovider_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyprovider/keyprovider"
)

func ExampleParseRef() {
	ref, err := keyprovider.ParseRef("file:///run/secrets/tessera%20key")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ref.Scheme, ref.Path)
	fmt.Println(ref) // canonical text

	// vault:// is package vault's scheme; this program does not import it.
	_, err = keyprovider.ParseRef("vault://secret/apps/tessera#api_key")
	fmt.Println(errors.Is(err, keyprovider.ErrSchemeNotLinked))

	// A key pasted where a reference belongs is never printed.
	_, err = keyprovider.ParseRef("file://sk-tessera-Zq9x7Lm2Pr4TkV8wQ3nB")
	fmt.Println(err)
	// Output:
	// file /run/secrets/tessera key
	// file:///run/secrets/tessera%20key
	// true
	// keyprovider: reference "file://sk-tessera-…2aec8cdb0239": file:// takes an absolute path, after three slashes: file:///run/secrets/tessera
}

func ExampleFromEnv() {
	ctx := context.Background()
	// The environment of a deployment: the key's variable refers to another
	// variable. (WithLookupEnv stands in for the process environment here;
	// leave it out in a program.)
	env := map[string]string{
		"TESSERA_API_KEY":   "env://SHARED_API_KEY",
		"SHARED_API_KEY":    "sk-tessera-example0123456789",
		"TESSERAL_API_KEY":  "awssm://prod/tesseral#api_key",
		"UNRELATED_API_KEY": "",
	}
	lookup := keyprovider.WithLookupEnv(func(name string) (string, bool) { v, ok := env[name]; return v, ok })

	p, err := keyprovider.FromEnv(ctx, keyprovider.Tessera, lookup)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("source:", p.Source())
	k, err := p.Fetch(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("key:", k) // a Key prints as its fingerprint

	// This program does not import package awssm, so awssm:// is not linked in.
	_, err = keyprovider.FromEnv(ctx, keyprovider.Tesseral, lookup)
	fmt.Println(errors.Is(err, keyprovider.ErrSchemeNotLinked))
	fmt.Println(err)
	// Output:
	// source: TESSERA_API_KEY=env://SHARED_API_KEY
	// key: sk-tessera-…0deabc250c0f
	// true
	// keyprovider: TESSERAL_API_KEY: reference "awssm://prod/tesseral#api_key": awssm:// needs its backend: add import _ "github.com/keyprovider/keyprovider/awssm" to the program: scheme not linked in
}

// A program that wires backends by hand registers their schemes on its own
// Resolver (r.Register(vault.Scheme()), ...) instead of relying on blank
// imports. A scheme of its own says what its references look like and how
// to open them.
func ExampleResolver() {
	r := keyprovider.NewResolver()
	r.Register(keyprovider.Scheme{
		Name:   "kms",
		Field:  true,
		Params: []string{"version"},
		Open: func(ctx context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
			fmt.Printf("open path=%s field=%s for %s\n", req.Ref.Path, req.Ref.Field, req.Service.Name)
			return keyprovider.ProviderFunc(func(ctx context.Context) (keyprovider.Key, error) {
				return req.Service.ParseKey("sk-tessera-fromkms0123", req.Ref.Params["version"])
			}), nil
		},
	})

	p, err := r.Open(context.Background(), "kms://keys/tessera#api_key?version=1", keyprovider.Tessera)
	if err != nil {
		fmt.Println(err)
		return
	}
	k, err := p.Fetch(context.Background())
	fmt.Println(k.Version(), err)
	// Output:
	// open path=keys/tessera field=api_key for tessera
	// 1 <nil>
}
