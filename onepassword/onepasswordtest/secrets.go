package onepasswordtest

import (
	"context"
	"errors"
	"sync"

	"github.com/keyprovider/keyprovider/onepassword"
)

// Errors of the SDK's Secrets API, worded as its core words them, for a
// [Secrets] to return.
var (
	ErrNoVault         = errors.New("error resolving secret reference: no vault matched the secret reference query")
	ErrNoItem          = errors.New("error resolving secret reference: no item matched the secret reference query")
	ErrNoField         = errors.New("error resolving secret reference: the specified field cannot be found within the item")
	ErrManyItems       = errors.New("error resolving secret reference: more than one item matched the secret reference query")
	ErrUnauthenticated = errors.New("you are not authenticated")
	ErrForbidden       = errors.New("you don't have the right permissions to access this resource")
	ErrBadToken        = errors.New("bad service account token, please rotate it: ")
	ErrRateLimited     = errors.New("rate limit exceeded")
	ErrNetwork         = errors.New("error sending request: connection refused")
)

// Secrets is a fake of the 1Password SDK's Secrets API
// (onepassword.SecretsAPI): a map from secret references to values. A
// reference it does not hold resolves to [ErrNoItem], as a deleted item
// does. It honours its context and is safe for concurrent use.
type Secrets struct {
	mu      sync.Mutex
	secrets map[string]string
	err     error
	calls   int
}

// NewSecrets returns a Secrets holding no secrets.
func NewSecrets() *Secrets { return &Secrets{secrets: map[string]string{}} }

// Set makes ref resolve to value.
func (r *Secrets) Set(ref, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets[ref] = value
}

// Delete forgets ref, as if its item were deleted.
func (r *Secrets) Delete(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.secrets, ref)
}

// Fail makes every Resolve return err until Fail(nil).
func (r *Secrets) Fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// Calls returns how many times Resolve was called.
func (r *Secrets) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// Resolve returns the value of ref.
func (r *Secrets) Resolve(ctx context.Context, ref string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if r.err != nil {
		return "", r.err
	}
	v, ok := r.secrets[ref]
	if !ok {
		return "", ErrNoItem
	}
	return v, nil
}

var _ onepassword.SecretsAPI = (*Secrets)(nil)
