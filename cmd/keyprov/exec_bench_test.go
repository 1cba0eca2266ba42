package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkExecStartup measures what keyprov exec adds to starting a
// program: `keyprov exec -- true` with two references to resolve (a
// file:// one and an env:// one) against `true` alone. It reports the
// median wall time of a run (median-ms), the target being a difference
// under 20 ms.
func BenchmarkExecStartup(b *testing.B) {
	keyPath := filepath.Join(b.TempDir(), "tessera")
	if err := os.WriteFile(keyPath, []byte(tesseraKey+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Skip("no true(1)")
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "TESSERA_API_KEY=file://" + keyPath,
		"OTHER=env://RAW", "RAW=" + tesseraKey2}
	bin := keyprovBinB(b)
	for _, bc := range []struct {
		name string
		argv []string
	}{
		{"true", []string{truePath}},
		{"keyprov-exec-true", []string{bin, "exec", "--", "true"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var times []time.Duration
			for b.Loop() {
				cmd := exec.Command(bc.argv[0], bc.argv[1:]...)
				cmd.Env = env
				start := time.Now()
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v: %v\n%s", bc.argv, err, out)
				}
				times = append(times, time.Since(start))
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2])/float64(time.Millisecond), "median-ms")
		})
	}
}

// keyprovBinB is keyprovBin for a benchmark (which runs under -short too).
func keyprovBinB(b *testing.B) string {
	b.Helper()
	bin, err := builtKeyprov()
	if err != nil {
		b.Fatal(err)
	}
	return bin
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + string(e.out) }
