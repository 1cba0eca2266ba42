package env_test

import (
	"context"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/env"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// BenchmarkFetch measures one Fetch: what a request costs when nothing
// caches in front of the provider.
func BenchmarkFetch(b *testing.B) {
	b.Run("variable", func(b *testing.B) {
		p := env.ForService(keyprovider.Tessera, newFakeEnv("TESSERA_API_KEY", secretKey).option())
		benchFetch(b, p)
	})
	b.Run("file", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "k")
		if err := writeAtomic(path, secretKey+"\n"); err != nil {
			b.Fatal(err)
		}
		p := env.ForService(keyprovider.Tessera, newFakeEnv("TESSERA_API_KEY_FILE", path).option())
		benchFetch(b, p)
	})
}

func benchFetch(b *testing.B, p *env.Provider) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Fetch(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
