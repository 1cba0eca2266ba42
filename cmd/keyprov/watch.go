package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
	"github.com/keyprovider/keyprovider/rotate"
)

// runWatch keeps one service's key fresh through a rotate.Source and prints
// a line on every rotation and every failed refresh, until ctx is done or
// --duration has passed.
func runWatch(ctx context.Context, args []string, env lookupFunc, stdout, stderr io.Writer) int {
	fs := newFlagSet("watch", stderr)
	service := fs.String("service", "", "the service whose key to watch: tessera or tesseral")
	envFile := fs.String("env-file", "", "an env file to resolve the key in; default: keyprov's own environment")
	duration := fs.Duration("duration", 0, "stop after this long; 0: until interrupted")
	interval := fs.Duration("interval", 30*time.Second, "how often to refresh the key")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	svc, e, code := serviceEnv("watch", *service, *envFile, false, env, stderr)
	if code >= 0 {
		return code
	}
	p, err := fromEnv(ctx, svc, keyprovider.WithLookupEnv(e.inject))
	if err != nil {
		fmt.Fprintf(stderr, "keyprov watch: %s\n", redact.String(err.Error()))
		return exitFail
	}

	var mu sync.Mutex // the source's goroutines print too
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		// Every line is scrubbed as check and get scrub theirs: an error
		// may repeat what a backend echoed.
		line := fmt.Sprintf(format, args...)
		fmt.Fprintln(stdout, time.Now().UTC().Format(time.RFC3339)+" "+svc.Name+" "+redact.String(line))
	}
	// The Source owns the provider from here on: its Close closes p.
	src, err := rotate.New(watchedProvider{p, say}, rotate.WithService(svc), rotate.WithRefreshInterval(*interval),
		rotate.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		_ = p.Close()
		fmt.Fprintf(stderr, "keyprov watch: %s\n", redact.String(err.Error()))
		return exitFail
	}
	defer func() {
		if err := src.Close(); err != nil {
			fmt.Fprintf(stderr, "keyprov watch: %s\n", redact.String(err.Error()))
		}
	}()
	// Registered after New has started the first fetch: a Source tells a
	// late subscriber the key it holds, so the first line is never missed.
	src.OnRotate(func(old, new keyprovider.Key) {
		if old.IsZero() {
			say("key %s version %q from %s", new, new.Version(), p.Source())
			return
		}
		say("ROTATED %s -> %s (version %q -> %q)", old, new, old.Version(), new.Version())
	})
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if _, err := src.Refresh(ctx); err != nil && ctx.Err() == nil {
		say("no key yet; watching on")
	}
	<-ctx.Done()
	h := src.Health()
	say("stopped: state %s, key %s, %d fetches, %d failed, %d rotations", h.State, h.Fingerprint, h.Fetches, h.Failures, h.Rotations)
	return exitOK
}

// watchedProvider is the provider keyprov watch reads through: every fetch
// goes through it, so that a failed refresh prints a line, and closing it
// closes the provider.
type watchedProvider struct {
	p   *keyprovider.EnvProvider
	say func(format string, args ...any)
}

func (w watchedProvider) Fetch(ctx context.Context) (keyprovider.Key, error) {
	start := time.Now()
	k, err := w.p.Fetch(ctx)
	if err != nil {
		w.say("refresh FAILED after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	return k, err
}

func (w watchedProvider) Close() error { return w.p.Close() }
