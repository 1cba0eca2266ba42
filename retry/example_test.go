package retry_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/retry"
)

// The retrier stacked on the authenticating transport, as
// keyprovider.NewClient does, here with two attempts in all. The server
// throttles the first request and asks for no wait.
func ExampleNew() {
	var calls atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		fmt.Fprintln(w, "authenticated:", r.Header.Get("Authorization") != "")
	}))
	defer api.Close()

	src := keyprovider.StaticSource(keyprovider.NewKey("sk-tessera-example0123456789", ""))
	auth := keyprovider.NewTransport(src, keyprovider.WithAllowedHosts(strings.TrimPrefix(api.URL, "http://")))
	client := &http.Client{Transport: retry.New(auth, retry.WithMaxAttempts(2))}

	resp, err := client.Get(api.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.StatusCode, " after ", calls.Load(), " requests: ", string(body))
	// Output: 200 after 2 requests: authenticated: true
}
