package keyprovider_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyprovider/keyprovider"
)

func ExampleNewKey() {
	k := keyprovider.NewKey("sk-tessera-Tj7mZJ8X2qKmRnGYpA4LbZqW8c3hN1JrV5fH9pK0", "3")

	// Printing a key shows its fingerprint, never the key.
	fmt.Println(k)
	fmt.Printf("%+v\n", k)
	fmt.Printf("%#v\n", k)
	// Reveal is for the one place the key goes on the wire.
	fmt.Println(len(k.Reveal()))
	// Output:
	// sk-tessera-…f982c9332b7e
	// sk-tessera-…f982c9332b7e version=3
	// keyprovider.Key{Fingerprint:"sk-tessera-…f982c9332b7e", Version:"3"}
	// 51
}

func ExampleKey_Fingerprint() {
	a := keyprovider.NewKey("sk-tessera-Tj7mZJ8X2qKmRnGYpA4LbZqW8c3hN1JrV5fH9pK0", "1")
	b := keyprovider.NewKey("sk-tessera-Tj7mZJ8X2qKmRnGYpA4LbZqW8c3hN1JrV5fH9pK0", "2")
	c := keyprovider.NewKey("sk-tessera-other", "")

	fmt.Println(a.Fingerprint() == b.Fingerprint(), a.Equal(b)) // same key, another version
	fmt.Println(a.Fingerprint() == c.Fingerprint(), a.Equal(c))
	fmt.Println(keyprovider.Key{}.Fingerprint())
	// Output:
	// true true
	// false false
	// <no key>
}

func ExampleService_Validate() {
	for _, v := range []string{
		"sk-tessera-Tj7mZJ8X2qKmRnGYpA4L",
		"tesseral_secret_key_abc",
		"sk-tessera-abc\r\nX-Injected: 1",
		"sk-tessera-",
	} {
		fmt.Println(keyprovider.Tessera.Validate(v))
	}
	// Output:
	// <nil>
	// invalid tessera key: does not start with "sk-tessera-" (it looks like a tesseral key)
	// invalid tessera key: control character 0x0d at byte 14
	// invalid tessera key: nothing after the prefix "sk-tessera-"
}

func ExampleService_ParseKey() {
	// A secret saved with a trailing newline: ParseKey trims, then validates.
	k, err := keyprovider.Tessera.ParseKey("sk-tessera-Tj7mZJ8X2qKmRnGYpA4L\n", "")
	fmt.Println(k, err)

	_, err = keyprovider.Tessera.ParseKey("  \n", "")
	fmt.Println(err, errors.Is(err, keyprovider.ErrInvalidKey))
	// Output:
	// sk-tessera-…ed658205572f <nil>
	// invalid tessera key: empty true
}

func Example_errorsIs() {
	// Every provider returns a *keyprovider.Error; test its class with
	// errors.Is, whatever the backend.
	var p keyprovider.Provider = keyprovider.ProviderFunc(func(context.Context) (keyprovider.Key, error) {
		return keyprovider.Key{}, &keyprovider.Error{Provider: "env", Ref: "TESSERA_API_KEY", Kind: keyprovider.ErrNotFound}
	})
	_, err := p.Fetch(context.Background())
	fmt.Println(err)
	switch {
	case errors.Is(err, keyprovider.ErrNotFound), errors.Is(err, keyprovider.ErrInvalidKey):
		fmt.Println("fix the configuration")
	case errors.Is(err, keyprovider.ErrUnavailable):
		fmt.Println("retry later")
	}
	// Output:
	// keyprovider: env TESSERA_API_KEY: key not found
	// fix the configuration
}

func ExampleStaticSource() {
	src := keyprovider.StaticSource(keyprovider.NewKey("sk-tessera-literal", ""))
	k, err := src.Token(context.Background())
	fmt.Println(k, err)
	// Output:
	// sk-tessera-…d34fbb0fb83f <nil>
}

func ExampleService_ResolveBaseURL() {
	// TESSERA_BASE_URL points the service at keyprov proxy, or a stand-in,
	// without a code change; here through an injected environment.
	env := map[string]string{"TESSERA_BASE_URL": "http://127.0.0.1:8787/v1"}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }

	svc, err := keyprovider.Tessera.ResolveBaseURL(keyprovider.WithLookupEnv(lookup))
	fmt.Println(svc.BaseURL, svc.Host(), err)

	// Plain HTTP off loopback would send the key in clear: refused.
	env["TESSERA_BASE_URL"] = "http://10.0.0.7/v1"
	_, err = keyprovider.Tessera.ResolveBaseURL(keyprovider.WithLookupEnv(lookup))
	fmt.Println(err, errors.Is(err, keyprovider.ErrHostNotAllowed))

	// Unset: the service's own.
	delete(env, "TESSERA_BASE_URL")
	svc, _ = keyprovider.Tessera.ResolveBaseURL(keyprovider.WithLookupEnv(lookup))
	fmt.Println(svc.BaseURL)
	// Output:
	// http://127.0.0.1:8787/v1 127.0.0.1:8787 <nil>
	// keyprovider: TESSERA_BASE_URL: the key goes only over HTTPS, or plain HTTP to a loopback host (got http://10.0.0.7) true
	// https://api.tesseraai.cloud/v1
}
