// Package bench measures keyprovider's hot paths beside the peers users
// would otherwise pick: golang.org/x/oauth2's ReuseTokenSource and Transport,
// aws-sdk-go-v2's CredentialsCache, and a bare atomic.Pointer load as the
// floor. Run everything with one command from the repository root:
//
//	make bench   # cd bench && go test -run '^$' -bench . -benchmem ./...
//
// The herd and fleet figures are also tests (go test ./... in this module),
// which assert the targets of BENCHMARKS.md.
package bench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/oauth2"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate"
)

const benchKey = "sk-tessera-benchmarkKEY0123456789abcdef"

// warmSource returns a rotate.Source that already holds a key.
func warmSource(b testing.TB) *rotate.Source {
	b.Helper()
	src, err := rotate.New(keyprovider.ProviderFunc(func(context.Context) (keyprovider.Key, error) {
		return keyprovider.NewKey(benchKey, "1"), nil
	}), rotate.WithRefreshInterval(time.Hour), rotate.WithLogger(discard))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = src.Close() })
	if _, err := src.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	return src
}

type staticOAuth2 struct{}

func (staticOAuth2) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: benchKey, Expiry: time.Now().Add(time.Hour)}, nil
}

func warmOAuth2(b testing.TB) oauth2.TokenSource {
	ts := oauth2.ReuseTokenSource(nil, staticOAuth2{})
	if _, err := ts.Token(); err != nil {
		b.Fatal(err)
	}
	return ts
}

func warmAWS(b testing.TB) *aws.CredentialsCache {
	c := aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: benchKey, CanExpire: true, Expires: time.Now().Add(time.Hour)}, nil
	}))
	if _, err := c.Retrieve(context.Background()); err != nil {
		b.Fatal(err)
	}
	return c
}

// sink keeps results alive so the compiler cannot drop the calls.
var sink atomic.Value

func BenchmarkTokenHit(b *testing.B) {
	ctx := context.Background()
	b.Run("keyprovider-rotate", func(b *testing.B) {
		src := warmSource(b)
		b.ReportAllocs()
		var k keyprovider.Key
		for b.Loop() {
			k, _ = src.Token(ctx)
		}
		sink.Store(k.Version())
	})
	b.Run("oauth2-ReuseTokenSource", func(b *testing.B) {
		ts := warmOAuth2(b)
		b.ReportAllocs()
		var t *oauth2.Token
		for b.Loop() {
			t, _ = ts.Token()
		}
		sink.Store(t.TokenType)
	})
	b.Run("aws-CredentialsCache", func(b *testing.B) {
		c := warmAWS(b)
		b.ReportAllocs()
		var cr aws.Credentials
		for b.Loop() {
			cr, _ = c.Retrieve(ctx)
		}
		sink.Store(cr.Source)
	})
	b.Run("atomic-floor", func(b *testing.B) {
		var p atomic.Pointer[keyprovider.Key]
		k := keyprovider.NewKey(benchKey, "1")
		p.Store(&k)
		b.ReportAllocs()
		var got *keyprovider.Key
		for b.Loop() {
			got = p.Load()
		}
		sink.Store(got.Version())
	})
}

func BenchmarkTokenHitParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("keyprovider-rotate", func(b *testing.B) {
		src := warmSource(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var k keyprovider.Key
			for pb.Next() {
				k, _ = src.Token(ctx)
			}
			_ = k
		})
	})
	b.Run("oauth2-ReuseTokenSource", func(b *testing.B) {
		ts := warmOAuth2(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = ts.Token()
			}
		})
	})
	b.Run("aws-CredentialsCache", func(b *testing.B) {
		c := warmAWS(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = c.Retrieve(ctx)
			}
		})
	})
	b.Run("atomic-floor", func(b *testing.B) {
		var p atomic.Pointer[keyprovider.Key]
		k := keyprovider.NewKey(benchKey, "1")
		p.Store(&k)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var got *keyprovider.Key
			for pb.Next() {
				got = p.Load()
			}
			_ = got
		})
	})
}

// TestTokenHitAllocatesNothing pins the 0 allocs/op target as a test.
func TestTokenHitAllocatesNothing(t *testing.T) {
	src := warmSource(t)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := src.Token(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Token on a warm source allocates %.1f times, want 0", allocs)
	}
}
