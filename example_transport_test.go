package keyprovider_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keyprovider/keyprovider"
)

// fakeAPI starts a stand-in API that accepts only "Bearer " + key and says
// what it saw.
func fakeAPI(key string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+key {
			http.Error(w, `{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}`, http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, "hello, authenticated caller")
	}))
}

// A client for a service: the key goes to the host of the service's BaseURL
// and nowhere else. Here the service is pointed at a local stand-in.
func ExampleNewClient() {
	const key = "sk-tessera-example0123456789"
	api := fakeAPI(key)
	defer api.Close()

	svc := keyprovider.Tessera
	svc.BaseURL = api.URL + "/v1" // in production, keep https://api.tesseraai.cloud/v1

	// In production the source is rotate.New(env.ForService(svc)) or another
	// backend; a static key keeps the example short.
	client := keyprovider.NewClient(keyprovider.StaticSource(keyprovider.NewKey(key, "")),
		keyprovider.WithAllowedHosts(svc.Host()))

	resp, err := client.Get(svc.BaseURL + "/models")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.Status, ": ", string(body))
	// Output: 200 OK: hello, authenticated caller
}

// An existing client keeps its own transport (TLS settings, proxies,
// timeouts, tracing) by becoming the Transport's Base. The same client can
// then be given to an SDK, as openai-go's option.WithHTTPClient(client);
// such an SDK retries throttled requests itself, so it gets the Transport
// alone, without NewClient's retrier.
func ExampleNewTransport_wrapExistingClient() {
	const key = "sk-tessera-example0123456789"
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "key received:", r.Header.Get("Authorization") == "Bearer "+key)
	}))
	defer api.Close()

	client := api.Client() // stands for your configured *http.Client
	client.Transport = keyprovider.NewTransport(keyprovider.StaticSource(keyprovider.NewKey(key, "")),
		keyprovider.WithBase(client.Transport), // nil would mean http.DefaultTransport
		keyprovider.WithAllowedHosts(strings.TrimPrefix(api.URL, "https://")))

	resp, err := client.Get(api.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(string(body))
	// Output: key received: true
}

// A redirect to another host is followed without the key.
func ExampleNewClient_redirect() {
	const key = "sk-tessera-example0123456789"
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "elsewhere got a key:", r.Header.Get("Authorization") != "")
	}))
	defer elsewhere.Close()
	api := httptest.NewServer(http.RedirectHandler(elsewhere.URL, http.StatusFound))
	defer api.Close()

	client := keyprovider.NewClient(keyprovider.StaticSource(keyprovider.NewKey(key, "")),
		keyprovider.WithAllowedHosts(strings.TrimPrefix(api.URL, "http://")))
	resp, err := client.Get(api.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(string(body))

	// With WithFailDisallowedHost the redirect fails instead.
	strict := keyprovider.NewClient(keyprovider.StaticSource(keyprovider.NewKey(key, "")),
		keyprovider.WithAllowedHosts(strings.TrimPrefix(api.URL, "http://")),
		keyprovider.WithFailDisallowedHost(true))
	_, err = strict.Get(api.URL)
	fmt.Println("strict client:", errors.Is(err, keyprovider.ErrHostNotAllowed))
	// Output:
	// elsewhere got a key: false
	// strict client: true
}

// CheckResponse turns an error answer into an error that says what to do:
// 401 means the key is no longer valid, 403 that it is valid but the plan
// does not cover the call, 429 and 5xx that a retry later may succeed.
func ExampleCheckResponse() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"error":{"message":"your tier does not cover this endpoint","code":"tier_restricted"}}`)
	}))
	defer api.Close()

	client := keyprovider.NewClient(keyprovider.StaticSource(keyprovider.NewKey("sk-tessera-example0123456789", "")),
		keyprovider.WithAllowedHosts(strings.TrimPrefix(api.URL, "http://")))
	resp, err := client.Get(api.URL + "/v1/rerank")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()

	err = keyprovider.CheckResponse(resp)
	var apiErr *keyprovider.APIError
	switch {
	case errors.Is(err, keyprovider.ErrPermission) && errors.As(err, &apiErr):
		fmt.Println("not allowed:", apiErr.StatusCode, apiErr.Code, "-", apiErr.Message)
	case errors.Is(err, keyprovider.ErrInvalidKey):
		fmt.Println("the key was rejected")
	case errors.Is(err, keyprovider.ErrUnavailable):
		fmt.Println("try again later")
	case err != nil:
		fmt.Println(err)
	}
	// Output: not allowed: 403 tier_restricted - your tier does not cover this endpoint
}
