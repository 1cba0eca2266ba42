package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate"
)

// BenchmarkTokenStale is Token while refreshes fail: the last good key is
// served from the slow path, which counts it (Health.StaleServes).
func BenchmarkTokenStale(b *testing.B) {
	var failing atomic.Bool
	src, err := rotate.New(keyprovider.ProviderFunc(func(context.Context) (keyprovider.Key, error) {
		if failing.Load() {
			return keyprovider.Key{}, &keyprovider.Error{Provider: "bench", Kind: keyprovider.ErrUnavailable, Err: errors.New("down")}
		}
		return keyprovider.NewKey(benchKey, "1"), nil
	}), rotate.WithRefreshInterval(time.Hour), rotate.WithLogger(discard))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = src.Close() })
	ctx := context.Background()
	if _, err := src.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	failing.Store(true)
	_, _ = src.Refresh(ctx)
	if src.Health().State != rotate.Stale {
		b.Fatal("not stale")
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = src.Token(ctx)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = src.Token(ctx)
			}
		})
	})
}
