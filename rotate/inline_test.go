package rotate_test

import (
	"bytes"
	"os/exec"
	"regexp"
	"testing"
)

// TestTokenInlines keeps Token's hit as cheap as BENCHMARKS.md says: the
// parallel hit is within 3x of a bare atomic load only because Token
// inlines into its callers. A change that pushes Token or its hot path over
// the inliner's budget fails here, by name, instead of quietly slowing
// every request.
func TestTokenInlines(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to ask the compiler")
	}
	// The compiler's diagnostics are replayed from the build cache, so this
	// costs a compile of this one package at most.
	out, err := exec.Command(goTool, "build", "-gcflags=-m", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build -gcflags=-m: %v\n%s", err, out)
	}
	for _, fn := range []string{`\(\*Source\)\.Token`, `token`} {
		can := regexp.MustCompile(`(?m)source\.go:\d+:\d+: can inline ` + fn + `$`)
		if !can.Match(out) {
			t.Errorf("the compiler no longer inlines %s; its report:\n%s", fn, grepInline(out))
		}
	}
}

// grepInline keeps the compiler's lines about inlining in source.go.
func grepInline(out []byte) []byte {
	return bytes.Join(regexp.MustCompile(`(?m)^.*source\.go.*inline.*$`).FindAll(out, -1), []byte("\n"))
}
