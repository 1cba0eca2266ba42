package rotation_test

import (
	"testing"

	"github.com/keyprovider/keyprovider/rotation"
)

func TestModeString(t *testing.T) {
	for _, tc := range []struct {
		m    rotation.Mode
		want string
	}{
		{rotation.Pending, "pending"},
		{rotation.Deferred, "deferred"},
		{rotation.Unconditional, "unconditional"},
		{0, "unknown"},
	} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(tc.m), got, tc.want)
		}
	}
}
