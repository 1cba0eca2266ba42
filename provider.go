// Package keyprovider gets API keys to the services that need them at run
// time, keeps them fresh when they are rotated, and puts them on outgoing HTTP
// requests as "Authorization: Bearer <key>".
//
// # The pieces
//
// A [Provider] reads a key from one backend, once per call: the environment
// (package env), HashiCorp Vault (package vault), AWS Secrets Manager (package
// awssm) or 1Password (package onepassword). A [TokenSource] hands a key to
// whoever needs one, usually from a cache: package rotate turns any Provider
// into a TokenSource that refreshes in the background, survives backend
// outages and follows rotations. A [Transport], built by [NewTransport],
// takes a TokenSource and authenticates every request of an
// [net/http.Client], sending the key only to the hosts it allows.
// [NewClient] stacks package retry's throttling retrier on top of it; a
// client that retries by itself (openai-go) takes the Transport alone.
//
// # Keys never leak
//
// A [Key] holds its secret in an unexported field and prints, logs and
// marshals as its [Key.Fingerprint]. Only [Key.Reveal] returns the value.
// Errors of this module name the provider and the reference, never the key.
//
// # Errors
//
// Every backend maps its failures onto four sentinels, so callers can decide
// what to do without knowing the backend: [ErrNotFound], [ErrInvalidKey],
// [ErrPermission] and [ErrUnavailable]. The backend's own error stays
// reachable with [errors.As] through [*Error].
package keyprovider

import "context"

// Provider reads an API key from one backend.
//
// Fetch performs one read of the backend each time it is called; it does not
// cache. It returns a key that has been trimmed of surrounding white space and
// checked with [Service.Validate] (for the provider's service, where one is
// configured), or an error that wraps one of [ErrNotFound], [ErrInvalidKey],
// [ErrPermission] or [ErrUnavailable], or the context's error. The error never
// contains the key.
//
// Implementations must be safe for concurrent use by multiple goroutines and
// must return promptly once ctx is done.
type Provider interface {
	Fetch(ctx context.Context) (Key, error)
}

// ProviderFunc adapts an ordinary function to the [Provider] interface.
type ProviderFunc func(ctx context.Context) (Key, error)

// Fetch calls f(ctx).
func (f ProviderFunc) Fetch(ctx context.Context) (Key, error) { return f(ctx) }

// TokenSource hands out the key to authenticate a request with.
//
// Unlike a [Provider], a TokenSource is expected to be cheap: it is called on
// every request, typically answers from memory, and goes to the backend only
// when it has no usable key. Implementations must be safe for concurrent use.
type TokenSource interface {
	Token(ctx context.Context) (Key, error)
}

// Invalidator is implemented by a caching [TokenSource] that can be told a key
// it handed out was rejected by the server (HTTP 401), so that it fetches a
// fresh one. Invalidate must not block on the backend: it starts or joins a
// refresh and returns. A stale key that is no longer the current one is
// ignored, so a burst of rejections costs one refresh.
type Invalidator interface {
	Invalidate(stale Key)
}

// StaticSource returns a [TokenSource] that always returns k. It is meant for
// tests and for keys given literally; it never refreshes. If k is the zero
// Key, Token reports [ErrNotFound].
func StaticSource(k Key) TokenSource { return staticSource{k} }

type staticSource struct{ k Key }

func (s staticSource) Token(ctx context.Context) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	if s.k.IsZero() {
		return Key{}, &Error{Provider: "static", Kind: ErrNotFound, Err: errNoKey}
	}
	return s.k, nil
}
