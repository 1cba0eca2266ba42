package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
)

type secretGone struct {
	version int
	how     string
}

func (e *secretGone) Error() string {
	return fmt.Sprintf("the latest version (%d) is %s", e.version, e.how)
}

type missingField struct{ field string }

func (e *missingField) Error() string { return fmt.Sprintf("the secret has no field %q", e.field) }

type missingMount struct{}

func (e *missingMount) Error() string { return "no secrets engine is mounted at this path" }

// errClosed is what Fetch returns after Close.
var errClosed = errors.New("the provider is closed")

func isForbidden(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}

// failure is the one function every error of this package goes through:
// it classifies err by kind and scrubs the message of every secret given
// (the Vault tokens the provider holds) and of any key-shaped text, since
// Vault's answers, and those of a proxy in front of it, are quoted verbatim
// and may echo a token or a key. The cause stays reachable with errors.As
// (an *api.ResponseError, say); whoever prints a cause they unwrapped
// redacts it themselves.
func failure(ref string, err error, secrets ...string) error {
	e := &keyprovider.Error{Provider: "vault", Ref: printable(redact.String(ref, secrets...)), Err: redact.Error(err, secrets...)}
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		e.Kind = kind(err)
	}
	return e
}

// kind maps a failure onto the sentinel it belongs to: the one place where
// Vault's answers are classified.
func kind(err error) error {
	var (
		re   *api.ResponseError
		ce   *configError
		gone *secretGone
		mf   *missingField
		mm   *missingMount
	)
	switch {
	case errors.Is(err, keyprovider.ErrInvalidKey), errors.As(err, &ce):
		return keyprovider.ErrInvalidKey
	case errors.Is(err, api.ErrSecretNotFound), errors.As(err, &gone), errors.As(err, &mf), errors.As(err, &mm):
		return keyprovider.ErrNotFound
	case errors.As(err, &re):
		switch {
		case re.StatusCode == http.StatusNotFound:
			return keyprovider.ErrNotFound
		case re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusUnauthorized:
			return keyprovider.ErrPermission
		case re.StatusCode == http.StatusBadRequest:
			return keyprovider.ErrInvalidKey
		default: // 429, 5xx, 503 sealed or standby
			return keyprovider.ErrUnavailable
		}
	default: // a network failure, or anything unforeseen
		return keyprovider.ErrUnavailable
	}
}

// maxRefLen bounds how much of a reference an error prints.
const maxRefLen = 200

// printable is ref with control characters (a CR/LF in a refused path)
// replaced by "?", cut to maxRefLen bytes.
func printable(ref string) string {
	ref = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, ref)
	if len(ref) > maxRefLen {
		ref = strings.ToValidUTF8(ref[:maxRefLen], "") + "…"
	}
	return ref
}
