package onepassword_test

import (
	"context"
	"testing"

	"github.com/keyprovider/keyprovider/onepassword"
	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

// BenchmarkNew is the cost of a constructor once the SDK core is loaded:
// the reference's validation by the SDK.
func BenchmarkNew(b *testing.B) {
	r := onepasswordtest.NewSecrets()
	for b.Loop() {
		if _, err := onepassword.New(r, "op://prod/Tessera API/credential"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConnectFetch is one refresh in Connect mode once the IDs are
// known: one GET item to the emulator over loopback HTTP.
func BenchmarkConnectFetch(b *testing.B) {
	srv := onepasswordtest.NewServer(b)
	vault := srv.AddVault("prod")
	if _, err := srv.PutItem(vault, apiItem("tessera", connectKey)); err != nil {
		b.Fatal(err)
	}
	p, err := onepassword.NewConnect(srv.Client(), "op://prod/tessera/credential")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := p.Fetch(ctx); err != nil {
		b.Fatal(err)
	}
	before := srv.Requests("")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Fetch(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(srv.Requests("")-before)/float64(b.N), "requests/op")
}
