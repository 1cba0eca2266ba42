package standin_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest/standin"
)

// get sends GET path to the stand-in with key, and returns the status.
func get(s *standin.Server, path, key string) int {
	req, err := http.NewRequest(http.MethodGet, s.BaseURL()+path, nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := s.Client().Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Outside a test, Start starts a stand-in and the caller closes it. A client
// built for api.Service(keyprovider.Tessera) (keyprovider.NewClient) talks
// to it; this one sets the header itself.
func ExampleStart() {
	const key = "sk-tessera-exampleStartKey0123456789"
	api, err := standin.Start(standin.WithKeys(key))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer api.Close()
	svc := api.Service(keyprovider.Tessera) // Tessera, with BaseURL on the stand-in

	req, err := http.NewRequest(http.MethodPost, svc.BaseURL+"/embeddings",
		strings.NewReader(`{"model":"Qwen/Qwen3-Embedding-8B","input":"Hello"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := api.Client().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	var body struct {
		Data []struct{ Embedding []float64 } `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil {
		fmt.Println(err)
		return
	}
	st := api.Stats()
	fmt.Println(resp.Status, len(body.Data[0].Embedding), "dimensions")
	fmt.Println(st.ByRoute[standin.RouteEmbeddings], "request with key", st.LastAccepted)
	// Output:
	// 200 OK 8 dimensions
	// 1 request with key sk-tessera-…cb1e35fb5d2c
}

// A planned rotation: the new key works at once, the old one until the
// grace ends. The clock is the test's, so nobody sleeps.
func ExampleServer_Rotate() {
	const oldKey, newKey = "sk-tessera-exampleOld0123456789", "sk-tessera-exampleNew0123456789"
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	api, err := standin.Start(standin.WithKeys(oldKey), standin.WithClock(clock))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer api.Close()

	api.Rotate(newKey, time.Hour)
	fmt.Println("during the grace: old", get(api, "/models", oldKey), "new", get(api, "/models", newKey))
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	fmt.Println("after the grace:  old", get(api, "/models", oldKey), "new", get(api, "/models", newKey))
	// Output:
	// during the grace: old 200 new 200
	// after the grace:  old 401 new 200
}

// Throttle makes the next requests 429 with Retry-After, which
// keyprovider.CheckResponse reports as ErrUnavailable with the wait.
func ExampleServer_Throttle() {
	const key = "tesseral_secret_key_exampleThrottle0123"
	api, err := standin.Start(standin.WithKeys(key))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer api.Close()

	api.Throttle(1, 30*time.Second)
	req, _ := http.NewRequest(http.MethodGet, api.BaseURL()+"/organizations", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := api.Client().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	err = keyprovider.CheckResponse(resp)
	var apiErr *keyprovider.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Code, apiErr.RetryAfter, errors.Is(err, keyprovider.ErrUnavailable))
	}
	fmt.Println("next:", get(api, "/organizations", key))
	// Output:
	// 429 resource_exhausted 30s true
	// next: 200
}

// Deny answers a valid key 403 on the routes its plan does not cover; a
// revoked key gets 401.
func ExampleServer_Deny() {
	const key = "sk-tessera-exampleDeny0123456789"
	api, err := standin.Start(standin.WithKeys(key))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer api.Close()

	api.Deny(key, standin.RouteModels)
	fmt.Println("models:", get(api, "/models", key))
	api.Revoke(key)
	fmt.Println("after Revoke:", get(api, "/models", key))
	st := api.Stats()
	fmt.Println("denied", st.Denied, "rejected", st.Rejected)
	// Output:
	// models: 403
	// after Revoke: 401
	// denied 1 rejected 1
}
