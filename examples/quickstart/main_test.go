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
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{"key rotated", "request 10: 200 OK", "10 requests, 0 failed", "refused 1", "rotate: new key"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "FAILED") {
		t.Errorf("a request failed:\n%s", got)
	}
	// The keys are random per run; only fingerprints ("sk-tessera-…") may
	// appear, never a key's secret part after the prefix.
	for _, line := range strings.Split(got, "\n") {
		if i := strings.Index(line, "sk-tessera-"); i >= 0 && !strings.HasPrefix(line[i+len("sk-tessera-"):], "…") {
			t.Errorf("a key is printed: %q", line)
		}
	}
}
