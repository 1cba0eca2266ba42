// Command quickstart is keyprovider's main job on the embedded default, with
// no cloud account and no secrets: it reads a Tessera key from
// TESSERA_API_KEY, keeps it in a rotate.Source, and calls a local stand-in
// for the Tessera embeddings API through keyprovider.NewClient. Half-way,
// the key is rotated (the stand-in accepts only the new key from then on,
// and the variable is updated, as a supervisor or a secrets sidecar would);
// the client's next request gets a 401, the transport reports the key to the
// source, which refetches it, and the request is replayed: no request fails.
//
// Run it from the repository root:
//
//	make quickstart     # or: go run ./examples/quickstart
//
// It prints fingerprints only, and exits non-zero if any request failed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/env"
	"github.com/keyprovider/keyprovider/keyprovidertest/standin"
	"github.com/keyprovider/keyprovider/rotate"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, 10); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run makes requests calls, rotating the key after half of them.
func run(ctx context.Context, w io.Writer, requests int) error {
	out := &lockedWriter{w: w} // the source logs from its own goroutines
	first := standin.NewKey(keyprovider.Tessera)
	api, err := standin.Start(standin.WithKeys(first))
	if err != nil {
		return err
	}
	defer api.Close()
	svc := api.Service(keyprovider.Tessera) // Tessera, with BaseURL on the stand-in
	if err := os.Setenv(svc.EnvVar, first); err != nil {
		return err
	}
	fmt.Fprintf(out, "stand-in Tessera API at %s; %s holds key %s\n", svc.BaseURL, svc.EnvVar, keyprovider.NewKey(first, ""))

	// The three lines a service needs: a provider, a cached source that
	// follows rotation, and a client that authenticates with it.
	src, err := rotate.New(env.ForService(svc),
		rotate.WithLogger(slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	if err != nil {
		return err
	}
	defer src.Close()
	client := keyprovider.NewClient(src, keyprovider.WithAllowedHosts(svc.Host()))

	failed := 0
	for i := 1; i <= requests; i++ {
		if i == requests/2+1 {
			next := standin.NewKey(keyprovider.Tessera)
			api.Rotate(next, 0) // at once: the old key is refused from now on
			if err := os.Setenv(svc.EnvVar, next); err != nil {
				return err
			}
			fmt.Fprintf(out, "-- key rotated: the API now accepts only %s, and %s holds it\n", keyprovider.NewKey(next, ""), svc.EnvVar)
		}
		dims, err := embed(ctx, client, svc.BaseURL, fmt.Sprintf("request %d", i))
		if err != nil {
			failed++
			fmt.Fprintf(out, "request %2d: FAILED: %v\n", i, err)
			continue
		}
		k, _ := src.Token(ctx)
		fmt.Fprintf(out, "request %2d: 200 OK, %d-dimension embedding, key %s\n", i, dims, k)
	}
	st := api.Stats()
	h := src.Health()
	fmt.Fprintf(out, "done: %d requests, %d failed; the API accepted %d and refused %d (the one 401 was replayed); source %s, %d backend reads\n",
		requests, failed, st.Accepted, st.Rejected, h.State, h.Fetches)
	if failed > 0 {
		return fmt.Errorf("%d of %d requests failed", failed, requests)
	}
	return nil
}

// embed makes one embeddings call and returns the embedding's length.
func embed(ctx context.Context, client *http.Client, baseURL, input string) (int, error) {
	body, err := json.Marshal(map[string]any{"model": "Qwen/Qwen3-Embedding-8B", "input": input})
	if err != nil {
		return 0, err
	}
	// bytes.Reader gives the request a GetBody, so that the transport can
	// replay it after a 401.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/embeddings", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := keyprovider.CheckResponse(resp); err != nil {
		return 0, err
	}
	var out struct {
		Data []struct {
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	if len(out.Data) != 1 {
		return 0, fmt.Errorf("got %d embeddings, want 1", len(out.Data))
	}
	return len(out.Data[0].Embedding), nil
}

// lockedWriter serialises writes from the program and the source's logger.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
