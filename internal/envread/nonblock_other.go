//go:build !unix

package envread

import "os"

// clearNonblock does nothing where O_NONBLOCK does not apply to files.
func clearNonblock(*os.File) error { return nil }
