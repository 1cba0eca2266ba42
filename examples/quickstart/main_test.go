package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestQuickstartSurvivesRotation(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Setenv("TESSERA_API_KEY", "") // restored after the test; run sets it
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer // run has returned before it is read: no race
	if err := run(ctx, &out, 10); err != nil {
		t.Fatalf("run: %v\n%s", err, scrub(out.String()))
	}
	got := out.String()
	for _, want := range []string{"key rotated", "request 10: 200 OK", "10 requests, 0 failed", "refused 1", "rotate: new key"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, scrub(got))
		}
	}
	if strings.Contains(got, "FAILED") {
		t.Errorf("a request failed:\n%s", scrub(got))
	}
	// The keys are random per run; only fingerprints ("sk-tessera-…") may
	// appear, never a key's secret part after the prefix.
	if scrub(got) != got {
		t.Errorf("a key is printed (shown here as <key>):\n%s", scrub(got))
	}
}

// scrub replaces every key in s (the prefix "sk-tessera-" and what follows,
// unless it is a fingerprint's "…") with "<key>", so that no failure message
// shows one.
func scrub(s string) string {
	const prefix = "sk-tessera-"
	var b strings.Builder
	for {
		i := strings.Index(s, prefix)
		if i < 0 {
			return b.String() + s
		}
		b.WriteString(s[:i])
		s = s[i+len(prefix):]
		if strings.HasPrefix(s, "…") {
			b.WriteString(prefix)
			continue
		}
		b.WriteString("<key>")
		s = strings.TrimLeft(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
	}
}
