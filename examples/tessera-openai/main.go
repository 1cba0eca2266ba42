// Command tessera-openai makes a Tessera embeddings call through the
// official OpenAI Go SDK (github.com/openai/openai-go), with keyprovider's
// http.Client putting the current key on every request. The SDK gets no API
// key of its own: the client authenticates, follows rotations, and replays
// a request once after a 401.
//
//	TESSERA_API_KEY=sk-tessera-... go run .
//	go run . -base-url http://127.0.0.1:PORT/v1    # the stand-in of ../standin
//	TESSERA_BASE_URL=http://127.0.0.1:8787/v1 go run .    # keyprov proxy, or a stand-in
//
// It is a module of its own, so that openai-go never enters the library's
// dependencies.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tessera-openai:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, lookup func(string) (string, bool), out io.Writer) error {
	fs := flag.NewFlagSet("tessera-openai", flag.ContinueOnError)
	baseURL := fs.String("base-url", "", "the Tessera API's base URL; default: TESSERA_BASE_URL, else the service's")
	input := fs.String("input", "Hello", "the text to embed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	svc := keyprovider.Tessera
	if u := strings.TrimSpace(*baseURL); u != "" {
		svc.BaseURL, svc.BaseURLEnvVar = u, "" // the flag wins over TESSERA_BASE_URL
	}
	// Without the flag, TESSERA_BASE_URL points the example at keyprov proxy or
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

	client := openai.NewClient(
		option.WithBaseURL(svc.BaseURL),
		// openai-go retries 429s itself, so it gets the bare auth transport
		// (keyprovider.NewTransport), not NewClient's retrying stack.
		option.WithHTTPClient(&http.Client{Transport: keyprovider.NewTransport(src,
			keyprovider.WithAllowedHosts(svc.Host()))}),
		option.WithAPIKey("unused"), // the keyprovider transport sets Authorization
	)
	resp, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "Qwen/Qwen3-Embedding-8B",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String(*input)},
	})
	if err != nil {
		return err
	}
	if len(resp.Data) == 0 {
		return fmt.Errorf("no embedding returned")
	}
	fmt.Fprintf(out, "%d-dimension embedding of %q (%d tokens)\n", len(resp.Data[0].Embedding), *input, resp.Usage.TotalTokens)
	return nil
}
