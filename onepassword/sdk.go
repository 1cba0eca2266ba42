package onepassword

import (
	"context"
	"errors"
	"strings"

	sdk "github.com/1password/onepassword-sdk-go"

	"github.com/keyprovider/keyprovider"
)

// sdkBackend reads references with the SDK's Secrets API.
type sdkBackend struct{ r SecretsAPI }

func (b *sdkBackend) mode() string { return "sdk" }

// supports accepts every reference: the SDK validated it.
func (b *sdkBackend) supports(reference) error { return nil }

func (b *sdkBackend) read(ctx context.Context, ref string, _ reference) (string, string, error, error) {
	v, err := b.r.Resolve(ctx, ref)
	if err != nil {
		return "", "", classifySDK(err), err
	}
	return v, "", nil, nil
}

// sdkErrors classifies the SDK's errors, which are plain messages from its
// core (only rate limiting has a type of its own), by the phrases the core
// uses. The first match wins; what matches nothing is ErrUnavailable, the
// class of network failures and of everything a retry may cure.
var sdkErrors = []struct {
	phrase string
	kind   error
}{
	// The reference names nothing, or more than one thing.
	{"no vault matched", keyprovider.ErrNotFound},
	{"no item matched", keyprovider.ErrNotFound},
	{"no section matched", keyprovider.ErrNotFound},
	{"cannot be found within the item", keyprovider.ErrNotFound},
	{"more than one", keyprovider.ErrNotFound},
	{"item is not in an active state", keyprovider.ErrNotFound},
	{"resource not found", keyprovider.ErrNotFound},
	// The token, or its access.
	{"service account token", keyprovider.ErrPermission},
	{"you are not authenticated", keyprovider.ErrPermission},
	{"don't have the right permissions", keyprovider.ErrPermission},
	{"session expired", keyprovider.ErrPermission},
	{"account couldn't be found", keyprovider.ErrPermission},
	// The reference itself (New validated it, so this is rare).
	{"secret reference could not be parsed", keyprovider.ErrInvalidKey},
	{"invalid user input", keyprovider.ErrInvalidKey},
	// Transient.
	{"rate limit exceeded", keyprovider.ErrUnavailable},
	{"request timeout", keyprovider.ErrUnavailable},
}

// classifySDK maps an error of the SDK onto a keyprovider sentinel.
func classifySDK(err error) error {
	var rl *sdk.RateLimitExceededError
	if errors.As(err, &rl) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return keyprovider.ErrUnavailable
	}
	msg := strings.ToLower(err.Error())
	for _, e := range sdkErrors {
		if strings.Contains(msg, e.phrase) {
			return e.kind
		}
	}
	return keyprovider.ErrUnavailable
}
