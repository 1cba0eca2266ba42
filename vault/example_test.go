package vault_test

import (
	"context"
	"fmt"
	"os"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate"
	"github.com/keyprovider/keyprovider/vault"
)

// Ops point each environment at its own path by configuration alone: the
// service reads KEY_PATH (secret/dev/tessera, secret/prod/tessera...) and
// the usual VAULT_ADDR / VAULT_TOKEN; no code changes between environments.
// (With keyprovider.FromEnv, TESSERA_API_KEY=vault://secret/prod/tessera
// does the same without KEY_PATH.)
func ExampleFromEnv() {
	ctx := context.Background()
	p, err := vault.FromEnv(ctx, os.Getenv("KEY_PATH"), vault.WithService(keyprovider.Tessera))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close() // idempotent; closes the client FromEnv built
	src, err := rotate.New(p)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	k, err := src.Token(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("using", k, "version", k.Version())
}
