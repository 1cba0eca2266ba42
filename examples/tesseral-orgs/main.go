// Command tesseral-orgs lists the organizations of a Tesseral project with
// the Tesseral Backend API, through plain net/http and keyprovider's client.
// The key comes from TESSERAL_API_KEY (the key itself, a reference such as
// vault://secret/prod/tesseral, or TESSERAL_API_KEY_FILE).
//
//	TESSERAL_API_KEY=tesseral_secret_key_... go run ./examples/tesseral-orgs
//	go run ./examples/tesseral-orgs -base-url http://127.0.0.1:PORT/v1   # go run ./examples/standin
//	TESSERAL_BASE_URL=http://127.0.0.1:PORT/v1 go run ./examples/tesseral-orgs
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate"
	_ "github.com/keyprovider/keyprovider/vault" // vault:// references
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tesseral-orgs:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, lookup func(string) (string, bool), out io.Writer) error {
	fs := flag.NewFlagSet("tesseral-orgs", flag.ContinueOnError)
	baseURL := fs.String("base-url", "", "the Tesseral Backend API's base URL; default: TESSERAL_BASE_URL, else the service's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	svc := keyprovider.Tesseral
	if u := strings.TrimSpace(*baseURL); u != "" {
		svc.BaseURL, svc.BaseURLEnvVar = u, "" // the flag wins over TESSERAL_BASE_URL
	}
	// Without the flag, TESSERAL_BASE_URL points the example at keyprov proxy or
	// a stand-in with no code change. Either way the URL is checked (HTTPS,
	// or plain HTTP to loopback) and the key is sent to its host only.
	svc, err := svc.ResolveBaseURL(keyprovider.WithLookupEnv(lookup))
	if err != nil {
		return err
	}

	p, err := keyprovider.FromEnv(ctx, svc, keyprovider.WithLookupEnv(lookup))
	if err != nil {
		return err
	}
	src, err := rotate.New(p) // src owns p from here on: src.Close closes it
	if err != nil {
		p.Close()
		return err
	}
	defer src.Close()
	client := keyprovider.NewClient(src, keyprovider.WithAllowedHosts(svc.Host()))

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, svc.BaseURL+"/organizations", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := keyprovider.CheckResponse(resp); err != nil {
		return err // a 403 matches keyprovider.ErrPermission, a 429 ErrUnavailable
	}
	var page struct {
		Organizations []struct {
			ID          string `json:"id"`
			DisplayName string `json:"displayName"`
		} `json:"organizations"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return err
	}
	for _, o := range page.Organizations {
		fmt.Fprintf(out, "%s\t%s\n", o.ID, o.DisplayName)
	}
	return nil
}
