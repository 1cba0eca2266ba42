package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/retry"
)

// Verification failures.
var (
	// errRefused is a 401 or 403: the key does not work. Not retried.
	errRefused = errors.New("the service refused the new key")
	// errUnverified is 429s or 5xx until the attempts ran out.
	errUnverified = errors.New("the service could not be reached to verify the new key")
)

// verifyAttempts bounds the requests verify makes.
const verifyAttempts = 4

// verifier checks a key against the service's live API with an
// authenticated request that changes nothing.
type verifier struct {
	client *http.Client
	// sleep waits d or until ctx ends; tests make it instant.
	sleep func(ctx context.Context, d time.Duration) error
}

// verifyURL is the URL verify GETs: base (--verify-url, <SERVICE>_BASE_URL
// or the service's BaseURL, checked by [serviceBaseURL]) with /models
// (Tessera) or /organizations with a page size of 1 (Tesseral).
func verifyURL(svc keyprovider.Service, base *url.URL) string {
	u := *base
	u.Path = strings.TrimRight(u.Path, "/")
	switch svc.Name {
	case keyprovider.Tesseral.Name:
		u.Path += "/organizations"
		u.RawQuery = "pageSize=1"
	default:
		u.Path += "/models"
	}
	return u.String()
}

// verify GETs target with key as the bearer token: 2xx is success, 401
// and 403 fail at once (errRefused), 429 and 5xx are retried with
// exponential backoff (or the Retry-After the service asks, up to 10s)
// then fail (errUnverified). attempt is called with each attempt's number.
func (v verifier) verify(ctx context.Context, target string, key keyprovider.Key, attempt func(n, status int)) error {
	backoff := 500 * time.Millisecond
	var last error
	for n := 1; n <= verifyAttempts; n++ {
		status, retryAfter, err := v.once(ctx, target, key)
		attempt(n, status)
		switch {
		case err != nil && ctx.Err() != nil:
			return err
		case err != nil:
			last = err
		case status >= 200 && status < 300:
			return nil
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return fmt.Errorf("%w: HTTP %d %s", errRefused, status, http.StatusText(status))
		case status == http.StatusTooManyRequests || status >= 500:
			last = fmt.Errorf("HTTP %d %s", status, http.StatusText(status))
		default:
			return fmt.Errorf("%w: unexpected HTTP %d %s", errRefused, status, http.StatusText(status))
		}
		if n == verifyAttempts {
			break
		}
		wait := backoff
		if retryAfter > 0 {
			wait = min(retryAfter, 10*time.Second)
		}
		if err := v.sleep(ctx, wait); err != nil {
			return err
		}
		backoff *= 2
	}
	return fmt.Errorf("%w after %d attempts: %v", errUnverified, verifyAttempts, last)
}

// once makes one request, and returns the status and the Retry-After.
func (v verifier) once(ctx context.Context, target string, key keyprovider.Key) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key.Reveal())
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	wait, _ := retry.After(resp.Header, time.Now())
	return resp.StatusCode, wait, nil
}

// newVerifyClient is the HTTP client verify uses: no redirects (the key
// never follows one to another host), no proxy from the environment.
func newVerifyClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
