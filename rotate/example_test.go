package rotate_test

import (
	"context"
	"errors"
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

// A StatefulSet's pods are numbered: pod 3 of 12 refreshes in the fourth
// twelfth of every interval, so the fleet's reads are exactly even. A slot
// outside the fleet is refused rather than piled onto another replica's.
func ExampleWithSlot() {
	backend := keyprovider.ProviderFunc(func(context.Context) (keyprovider.Key, error) {
		return keyprovider.NewKey("sk-tessera-example0123456789", "7"), nil
	})
	hostname, replicas := "api-3", 12 // os.Hostname() and the replica count, in a real pod
	var ordinal int
	if _, err := fmt.Sscanf(hostname, "api-%d", &ordinal); err != nil {
		fmt.Println(err)
		return
	}
	src, err := rotate.New(backend, rotate.WithSlot(ordinal, replicas), rotate.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	fmt.Println("slot", ordinal, "of", replicas)

	_, err = rotate.New(backend, rotate.WithSlot(12, replicas))
	fmt.Println(errors.Is(err, keyprovider.ErrInvalidKey), err)
	// Output:
	// slot 3 of 12
	// true keyprovider: rotate: invalid key: slot 12 of 12: want 0 ≤ Slot < Slots
}

// countingProvider is a Provider that holds a connection: an io.Closer.
type countingProvider struct{ closes int }

func (p *countingProvider) Fetch(context.Context) (keyprovider.Key, error) {
	return keyprovider.NewKey("sk-tessera-example0123456789", "7"), nil
}

func (p *countingProvider) Close() error { p.closes++; return nil }

// A Source owns its Provider and closes it; Sources that share one are told
// so, and whoever made the Provider closes it after them.
func ExampleWithSharedProvider() {
	quiet := rotate.WithLogger(slog.New(slog.DiscardHandler))

	owned := &countingProvider{}
	src, _ := rotate.New(owned, quiet)
	_ = src.Close()
	fmt.Println("owned provider closed", owned.closes, "time(s)")

	shared := &countingProvider{}
	a, _ := rotate.New(shared, rotate.WithSharedProvider(), quiet)
	b, _ := rotate.New(shared, rotate.WithSharedProvider(), rotate.WithSlot(1, 2), quiet)
	_, _ = a.Close(), b.Close()
	fmt.Println("shared provider closed", shared.closes, "time(s) by the Sources")
	_ = shared.Close()
	// Output:
	// owned provider closed 1 time(s)
	// shared provider closed 0 time(s) by the Sources
}
