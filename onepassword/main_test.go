package onepassword_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider/onepassword"
)

// TestMain loads the SDK's core once for the whole package, before the
// leak check's baseline, as a service would at start-up.
func TestMain(m *testing.M) {
	flag.Parse()
	start := time.Now()
	if err := onepassword.Preload(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "loading the 1Password SDK core:", err)
		os.Exit(1)
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "1Password SDK core loaded in %v\n", time.Since(start).Round(time.Millisecond))
	}
	goleak.VerifyTestMain(m)
}
