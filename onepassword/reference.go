package onepassword

import (
	"context"
	"fmt"
	"strings"
	"sync"

	sdk "github.com/1password/onepassword-sdk-go"

	"github.com/keyprovider/keyprovider"
)

// ReferenceError reports a secret reference the 1Password SDK's parser
// rejects. It unwraps to [keyprovider.ErrInvalidKey].
type ReferenceError struct {
	// Ref is the reference as given.
	Ref string
	// Reason is the SDK's explanation, as it gave it.
	Reason string
}

// Error gives the SDK's reason; the reference is named by the
// [*keyprovider.Error] around it.
func (e *ReferenceError) Error() string {
	return "invalid 1Password secret reference: " + e.Reason
}

// Unwrap returns [keyprovider.ErrInvalidKey].
func (e *ReferenceError) Unwrap() error { return keyprovider.ErrInvalidKey }

// reference is a validated op:// reference, split into its parts.
type reference struct {
	vault, item, section, field string
	// attribute is the ?attribute= parameter, if any.
	attribute string
}

// parseReference validates ref with the SDK, then splits it.
func parseReference(ctx context.Context, ref string) (reference, error) {
	if strings.TrimSpace(ref) == "" {
		return reference{}, configError(ref, "empty secret reference")
	}
	if err := Preload(ctx); err != nil {
		return reference{}, err
	}
	if err := sdk.Secrets.ValidateSecretReference(ctx, ref); err != nil {
		reason := strings.TrimPrefix(err.Error(), "the secret reference could not be parsed: ")
		return reference{}, newError(ref, keyprovider.ErrInvalidKey, &ReferenceError{Ref: ref, Reason: reason})
	}
	// The SDK accepted it; the shared grammar splits it the same way.
	parsed, err := keyprovider.ParseRef(ref)
	if err != nil {
		return reference{}, newError(ref, keyprovider.ErrInvalidKey, err)
	}
	segs := strings.Split(parsed.Path, "/")
	r := reference{vault: segs[0], item: segs[1], field: segs[len(segs)-1], attribute: parsed.Params["attribute"]}
	if len(segs) == 4 {
		r.section = segs[2]
	}
	return r, nil
}

// core is the SDK's WebAssembly core, loaded once per process.
var core struct {
	once sync.Once
	done chan struct{}
	err  error
}

// Preload loads the 1Password SDK's core (a WebAssembly module compiled at
// first use, about 4.5 s; see the package documentation) if it is not
// loaded yet, and waits for it on ctx. Every Provider constructor needs the
// core, and loads it on first use; a service calls Preload early, in a
// goroutine of its own, to overlap that cost with the rest of its start-up.
//
// The load runs once per process and is not cancelled by ctx: a Preload
// whose ctx ends returns ctx's error while the load goes on, for the next
// caller. An error from the load itself (a platform the SDK does not
// support) is returned to every caller, as [keyprovider.ErrUnavailable].
func Preload(ctx context.Context) error {
	core.once.Do(func() {
		core.done = make(chan struct{})
		go func() {
			defer close(core.done)
			// The SDK loads its core, unsynchronised, on first use of any
			// function; ours is the one first use. A reference it accepts
			// proves the core works.
			if err := sdk.Secrets.ValidateSecretReference(context.Background(), "op://vault/item/field"); err != nil {
				core.err = newError("", keyprovider.ErrUnavailable, fmt.Errorf("loading the 1Password SDK core: %w", err))
			}
		}()
	})
	select {
	case <-core.done:
		return core.err
	case <-ctx.Done():
		return newError("", nil, fmt.Errorf("waiting for the 1Password SDK core: %w", ctx.Err()))
	}
}
