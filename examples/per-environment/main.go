// Command per-environment is one binary that reads its Tessera key from
// the environment in dev and from Vault (or AWS Secrets Manager) in prod,
// decided only by what TESSERA_API_KEY holds:
//
//	# dev.env
//	TESSERA_API_KEY=sk-tessera-dev...
//	# prod.env
//	TESSERA_API_KEY=vault://secret/prod/tessera#api_key
//	VAULT_ADDR=https://vault.internal:8200
//
// It prints where the key came from and its fingerprint, never the key.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/keyprovider/keyprovider"
	_ "github.com/keyprovider/keyprovider/awssm" // awssm:// references
	"github.com/keyprovider/keyprovider/rotate"
	_ "github.com/keyprovider/keyprovider/vault" // vault:// references
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.LookupEnv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "per-environment:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, lookup func(string) (string, bool), out io.Writer) error {
	p, err := keyprovider.FromEnv(ctx, keyprovider.Tessera, keyprovider.WithLookupEnv(lookup))
	if err != nil {
		return err
	}
	src, err := rotate.New(p) // src owns p from here on: src.Close closes it
	if err != nil {
		p.Close()
		return err
	}
	defer src.Close()
	k, err := src.Refresh(ctx) // fail fast at start-up
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "key %s (version %q) from %s\n", k, k.Version(), p.Source())
	return nil
}
