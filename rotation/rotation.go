// Package rotation is the write side of a key store: what a backend's
// Provider implements so that a tool (keyprov rotate, or a Go program) can
// replace the key it serves with AWS's rotation discipline, everywhere:
// stage the new key without making it current, test it against the live
// API, then promote it, or abandon it when the test fails.
//
// A Provider of package vault, awssm or onepassword (Connect mode) is a
// [Writer]; find out with a type assertion:
//
//	w, ok := p.(rotation.Writer)
//	cur, _ := p.Fetch(ctx)
//	st, err := w.Stage(ctx, cur, next)
//	// ... verify next against the service ...
//	now, err := w.Promote(ctx, st) // or w.Abandon(ctx, st)
//
// What staging can mean depends on the store, and [Staged.Mode] says which:
// a version readers are not given ([Pending], AWS's AWSPENDING), or nothing
// written until Promote, which is then one write conditioned on the version
// read ([Deferred], Vault KV v2's check-and-set, Connect's item version), or
// one unconditioned write ([Unconditional], Vault KV v1). In every mode, a
// key that was not promoted is never current.
package rotation

import (
	"context"
	"errors"

	"github.com/keyprovider/keyprovider"
)

// Mode is what [Writer.Stage] does in a store.
type Mode int

// The modes of staging.
const (
	// Pending: Stage writes the new key as a version readers are not
	// given (AWS Secrets Manager's AWSPENDING); Promote makes that version
	// current; Abandon takes its staging label away.
	Pending Mode = iota + 1
	// Deferred: the store has no version readers are not given. Stage
	// writes nothing and records the version the current key was read at;
	// Promote writes the new key in one write conditioned on that version
	// (Vault KV v2 check-and-set, 1Password Connect's item version), which
	// fails with [ErrConflict] when another writer came first. Abandon has
	// nothing to undo.
	Deferred
	// Unconditional: as Deferred, but the store cannot condition the
	// write (Vault KV v1): a concurrent writer's value is overwritten, and
	// the previous value is gone once Promote has written.
	Unconditional
)

// String names the mode: "pending", "deferred", "unconditional".
func (m Mode) String() string {
	switch m {
	case Pending:
		return "pending"
	case Deferred:
		return "deferred"
	case Unconditional:
		return "unconditional"
	default:
		return "unknown"
	}
}

// Staged is a key [Writer.Stage] staged. It holds the new key as a
// [keyprovider.Key], which prints as its fingerprint only.
type Staged struct {
	// Mode is what staging did.
	Mode Mode
	// Current is the version of the key that was current when the new key
	// was staged: what Promote is conditioned on. Empty when the store has
	// no versions (KV v1).
	Current string
	// Version is the version the store gave the staged key (an AWS
	// version ID); empty when nothing was written yet (Deferred,
	// Unconditional): Promote's key says it.
	Version string
	// Next is the staged key.
	Next keyprovider.Key
	// Previous is the key that was current, given to Stage: what a store
	// that keeps the previous value beside the new one (a 1Password field)
	// writes there.
	Previous keyprovider.Key
}

// Writer is the write capability of a key store. Its methods are safe for
// concurrent use, as Fetch is; each error is a *keyprovider.Error scrubbed
// of every credential the backend holds and of the keys (it names keys by
// fingerprint only).
type Writer interface {
	// Stage stages next to replace current, the key Fetch returned,
	// without making it current. Staging the same key again (a re-run
	// after a crash) is idempotent. next equal to current is an error
	// wrapping keyprovider.ErrInvalidKey.
	Stage(ctx context.Context, current, next keyprovider.Key) (Staged, error)
	// Promote makes the staged key current and returns it with the
	// version the store now serves. The key that was current stays
	// readable where the store keeps one (AWSPREVIOUS, the previous KV v2
	// version, a Connect field; see each backend). A store changed since
	// Stage read it is an error wrapping [ErrConflict], and nothing is
	// written.
	Promote(ctx context.Context, s Staged) (keyprovider.Key, error)
	// Abandon undoes Stage and says what, if anything, is left in the
	// store ("nothing was written", "version V no longer has AWSPENDING;
	// AWS keeps it unlabelled").
	Abandon(ctx context.Context, s Staged) (string, error)
}

// ErrConflict is the Kind of the error of a Promote (or Stage) that found
// the secret changed by another writer since it was read. Nothing was
// written: read the secret again and start over.
var ErrConflict = errors.New("rotation: the secret was changed by another writer since it was read")

// ErrSameKey is the cause of a Stage given the key that is current.
var ErrSameKey = errors.New("rotation: the new key is the current key")
