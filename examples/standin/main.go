// Command standin runs the Tessera and Tesseral stand-in of package
// keyprovidertest/standin on a loopback port until it is interrupted, so
// that the other examples can be run end to end with no account and no real
// key. It accepts the keys held by TESSERA_API_KEY and TESSERAL_API_KEY
// (literal keys, not references), prints its base URL and the keys'
// fingerprints, and, when stopped, what it served.
//
//	export TESSERA_API_KEY=sk-tessera-localDev0123456789
//	go run ./examples/standin &          # prints: stand-in at http://127.0.0.1:PORT/v1
//	cd examples/tessera-openai && go run . -base-url http://127.0.0.1:PORT/v1
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest/standin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.LookupEnv, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done. ready, if not nil, is called once the
// stand-in listens.
func run(ctx context.Context, lookup func(string) (string, bool), out io.Writer, ready func(*standin.Server)) error {
	var keys []string
	for _, svc := range keyprovider.KnownServices() {
		v, ok := lookup(svc.EnvVar)
		if !ok || v == "" {
			continue
		}
		if err := svc.Validate(v); err != nil {
			return fmt.Errorf("%s: %w", svc.EnvVar, err)
		}
		keys = append(keys, v)
		fmt.Fprintf(out, "accepting the %s key %s\n", svc.EnvVar, standin.Fingerprint(v))
	}
	if len(keys) == 0 {
		return errors.New("set TESSERA_API_KEY or TESSERAL_API_KEY to the key the stand-in should accept")
	}
	api, err := standin.Start(standin.WithKeys(keys...))
	if err != nil {
		return err
	}
	defer api.Close()
	fmt.Fprintf(out, "stand-in at %s (interrupt to stop)\n", api.BaseURL())
	if ready != nil {
		ready(api)
	}
	<-ctx.Done()
	st := api.Stats()
	fmt.Fprintf(out, "served %d requests: %d accepted, %d refused (401)\n", st.Requests, st.Accepted, st.Rejected)
	return nil
}
