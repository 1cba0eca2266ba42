package onepassword_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider/onepassword"
	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

// BenchmarkNew is the cost of a constructor once the SDK core is loaded:
// the reference's validation by the SDK.
func BenchmarkNew(b *testing.B) {
	r := onepasswordtest.NewSecrets()
	for b.Loop() {
		_, err := onepassword.New(r, "op://prod/Tessera API/credential")
		require.NoError(b, err)
	}
}

// BenchmarkConnectFetch is one refresh in Connect mode once the IDs are
// known: one GET item to the emulator over loopback HTTP.
func BenchmarkConnectFetch(b *testing.B) {
	srv := onepasswordtest.NewServer(b)
	vault := srv.AddVault("prod")
	_, err := srv.PutItem(vault, apiItem("tessera", connectKey))
	require.NoError(b, err)
	p, err := onepassword.NewConnect(srv.Client(), "op://prod/tessera/credential")
	require.NoError(b, err)
	ctx := context.Background()
	_, err = p.Fetch(ctx)
	require.NoError(b, err)
	before := srv.Requests("")
	b.ReportAllocs()
	for b.Loop() {
		_, err := p.Fetch(ctx)
		require.NoError(b, err)
	}
	b.ReportMetric(float64(srv.Requests("")-before)/float64(b.N), "requests/op")
}
