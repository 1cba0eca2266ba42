package rotate_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate"
)

func ExampleNew() {
	backend := keyprovider.ProviderFunc(func(context.Context) (keyprovider.Key, error) {
		return keyprovider.NewKey("sk-tessera-example0123456789", "7"), nil
	})
	src, err := rotate.New(backend,
		rotate.WithService(keyprovider.Tessera),
		rotate.WithRefreshInterval(10*time.Minute),
		rotate.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()

	// Fail fast at start-up: wait for the first key.
	if _, err := src.Refresh(context.Background()); err != nil {
		fmt.Println("no key:", err)
		return
	}
	k, _ := src.Token(context.Background()) // from memory from now on
	h := src.Health()
	fmt.Println(k, k.Version(), h.State, h.Ready())
	// Output: sk-tessera-…0deabc250c0f 7 fresh <nil>
}
