package env_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider/env"
	"github.com/keyprovider/keyprovider/rotate"
)

var _ rotate.Watcher = (*env.Provider)(nil)

func TestWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte("sk-tessera-watchAAAA1111\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lookup := func(vars map[string]string) func(string) (string, bool) {
		return func(name string) (string, bool) { v, ok := vars[name]; return v, ok }
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if ch := env.New("KEY", env.WithLookupEnv(lookup(map[string]string{"KEY": "sk-tessera-watchAAAA1111"}))).Watch(ctx); ch != nil {
		t.Error("Watch of a key in the variable itself: want nil, there is nothing to watch")
	}
	ch := env.New("KEY", env.WithLookupEnv(lookup(map[string]string{"KEY_FILE": path}))).Watch(ctx)
	if ch == nil {
		t.Fatal("Watch of a _FILE key returned nil")
	}
	select {
	case <-ch: // armed
	case <-time.After(5 * time.Second):
		t.Fatal("no hint after arming within 5s")
	}
	if err := os.WriteFile(path, []byte("sk-tessera-watchBBBB2222\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("a write to the file gave no hint within 5s")
	}
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the channel was not closed within 5s of the cancellation")
		}
	}
}
