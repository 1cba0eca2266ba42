// Package kinds holds the error sentinels of package keyprovider, which
// re-exports them as keyprovider.ErrNotFound and the others, so that
// internal packages the root imports can classify errors with them too.
package kinds

import "errors"

// The sentinels; see package keyprovider for what each means.
var (
	ErrNotFound    = errors.New("key not found")
	ErrInvalidKey  = errors.New("invalid key")
	ErrPermission  = errors.New("permission denied")
	ErrUnavailable = errors.New("backend unavailable")
)
