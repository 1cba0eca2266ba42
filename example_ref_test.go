package keyprovider_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyprovider/keyprovider"
)

func ExampleParseRef() {
	ref, err := keyprovider.ParseRef("vault://secret/apps/tessera?version=3#api_key")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ref.Scheme, ref.Mount, ref.Path, ref.Field, ref.Param("version"))
	fmt.Println(ref) // canonical text: the field first

	_, err = keyprovider.ParseRef("vault://secret/apps/tessera#api_key?verison=3")
	fmt.Println(err)
	// Output:
	// vault secret apps/tessera api_key 3
	// vault://secret/apps/tessera#api_key?version=3
	// keyprovider: reference "vault://secret/apps/tessera#api_key?verison=3": unknown parameter "verison" (allowed: version, namespace)
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

// A program that wires backends by hand registers their openers on its own
// Resolver instead of relying on blank imports.
func ExampleResolver() {
	r := keyprovider.NewResolver()
	r.Register("vault", keyprovider.OpenerFunc(func(ctx context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
		// A real program registers vault.OpenRef here.
		fmt.Printf("open mount=%s path=%s field=%s for %s\n", req.Ref.Mount, req.Ref.Path, req.Ref.Field, req.Service.Name)
		return keyprovider.ProviderFunc(func(ctx context.Context) (keyprovider.Key, error) {
			return req.Service.ParseKey("sk-tessera-fromvault0123", "1")
		}), nil
	}))
	fmt.Println(r.Schemes())

	p, err := r.Open(context.Background(), "vault://kv/tessera#api_key", keyprovider.Tessera)
	if err != nil {
		fmt.Println(err)
		return
	}
	k, err := p.Fetch(context.Background())
	fmt.Println(k.Version(), err)
	// Output:
	// [env file vault]
	// open mount=kv path=tessera field=api_key for tessera
	// 1 <nil>
}
