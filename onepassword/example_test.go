package onepassword_test

import (
	"context"
	"fmt"
	"log"

	op "github.com/1Password/connect-sdk-go/onepassword"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/onepassword"
	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

// A key read through a 1Password Connect server, configured the way a
// Kubernetes deployment configures it: OP_CONNECT_HOST and OP_CONNECT_TOKEN.
// The emulator stands in for the Connect server here.
func Example() {
	srv := onepasswordtest.Start()
	defer srv.Close()
	vault := srv.AddVault("prod")
	_, err := srv.PutItem(vault, op.Item{
		Title:    "Tessera API",
		Category: op.ApiCredential,
		Fields: []*op.ItemField{
			{ID: "credential", Label: "credential", Type: op.FieldTypeConcealed, Value: "sk-tessera-example0123456789"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	env := map[string]string{"OP_CONNECT_HOST": srv.URL, "OP_CONNECT_TOKEN": srv.Token}

	ctx := context.Background()
	p, err := onepassword.FromEnv(ctx, "op://prod/Tessera API/credential",
		onepassword.WithService(keyprovider.Tessera),
		onepassword.WithLookupEnv(func(name string) (string, bool) { v, ok := env[name]; return v, ok }))
	if err != nil {
		log.Fatal(err)
	}
	k, err := p.Fetch(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Mode(), k, "item version", k.Version())
	// Output: connect sk-tessera-…0deabc250c0f item version 1
}

// The SDK path: New takes the Secrets API of an SDK client,
// client.Secrets(). The fake stands in for it here.
func ExampleNew() {
	secrets := onepasswordtest.NewSecrets() // in production: client.Secrets()
	secrets.Set("op://prod/Tessera API/credential", "sk-tessera-example0123456789")

	p, err := onepassword.New(secrets, "op://prod/Tessera API/credential", onepassword.WithService(keyprovider.Tessera))
	if err != nil {
		log.Fatal(err)
	}
	k, err := p.Fetch(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Mode(), k)

	// A typo in a reference is caught by the SDK's parser, up front.
	_, err = onepassword.New(secrets, "op://prod/Tessera API")
	fmt.Println(err)
	// Output:
	// sdk sk-tessera-…0deabc250c0f
	// keyprovider: onepassword op://prod/Tessera API: invalid 1Password secret reference: secret reference has invalid format - must be "op://<vault>/<item>/[section/]field[?attribute=<attribute-value>]"
}
