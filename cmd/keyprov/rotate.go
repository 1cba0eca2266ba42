package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/keyprovider/keyprovider/internal/redact"
)

// maxKeyInput bounds what rotate reads from stdin.
const maxKeyInput = 64 << 10

// rotateConfig is the flags of keyprov rotate.
type rotateConfig struct {
	service, envFile, verifyURL                 string
	dryRun, noVerify, yes, writeFile, jsonLines bool
	wait, timeout                               time.Duration
	inherit                                     bool
}

// rotateDeps are what a rotation talks to besides the store: the verifier,
// the polling interval of --wait, and a hook called after each step that
// wrote or checked something, which a test uses to stop the run there as a
// crash would (a non-nil error ends the run at once, undoing nothing).
type rotateDeps struct {
	verifier  verifier
	poll      time.Duration
	afterStep func(step string) error
}

func defaultRotateDeps() rotateDeps {
	return rotateDeps{
		verifier:  verifier{client: newVerifyClient(), sleep: sleepCtx},
		poll:      time.Second,
		afterStep: func(string) error { return nil },
	}
}

// runRotate is keyprov rotate, with the new key read from stdin.
func runRotate(ctx context.Context, args []string, env lookupFunc, stdin io.Reader, stdout, stderr io.Writer) int {
	return rotateWith(ctx, args, env, stdin, stdout, stderr, defaultRotateDeps())
}

func parseRotateFlags(args []string, stderr io.Writer) (rotateConfig, int) {
	var c rotateConfig
	fs := newFlagSet("rotate", stderr)
	fs.StringVar(&c.service, "service", "", "the service whose key to rotate: tessera or tesseral")
	fs.StringVar(&c.envFile, "env-file", "", "the env file of the environment to rotate in; default: keyprov's own environment")
	fs.BoolVar(&c.inherit, "inherit-env", false, inheritEnvUsage)
	fs.BoolVar(&c.dryRun, "dry-run", false, "print the plan and write nothing")
	fs.BoolVar(&c.noVerify, "no-verify", false, "do not test the new key against the service before promoting it")
	fs.StringVar(&c.verifyURL, "verify-url", "", "the API base URL to verify against; default: <SERVICE>_BASE_URL, else the service's")
	fs.BoolVar(&c.yes, "yes", false, "go ahead on a store that cannot stage (Vault KV v1, a file): the write is immediate and final")
	fs.BoolVar(&c.writeFile, "write-file", false, "allow rewriting the file a file:// reference or _FILE variable names")
	fs.DurationVar(&c.wait, "wait", 0, "after promoting, poll until the store serves the new key, up to this long")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "how long each step may take")
	fs.BoolVar(&c.jsonLines, "json", false, "print one JSON object per step")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, exitOK
		}
		return c, exitUsage
	}
	if fs.NArg() > 0 {
		// The argument may be the key: never echo it.
		fmt.Fprintln(stderr, "keyprov rotate: refusing a positional argument: the new key is read from stdin only, never from the command line (where ps and shell history keep it); rotate it if it was a key")
		return c, exitUsage
	}
	return c, -1
}

// readNewKey reads the new key from stdin: its first line, trimmed.
func readNewKey(stdin io.Reader) (string, error) {
	if stdin == nil {
		return "", errors.New("the new key is read from stdin, and there is none")
	}
	b, err := io.ReadAll(io.LimitReader(stdin, maxKeyInput+1))
	if err != nil {
		return "", fmt.Errorf("reading the new key from stdin: %w", err)
	}
	if len(b) > maxKeyInput {
		return "", errors.New("stdin holds more than a key")
	}
	s := strings.TrimSpace(string(b))
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return "", errors.New("stdin holds more than one line: give the new key alone")
	}
	if s == "" {
		return "", errors.New("no new key on stdin (pipe it: keyprov rotate ... < newkey)")
	}
	return s, nil
}

func rotateWith(ctx context.Context, args []string, env lookupFunc, stdin io.Reader, stdout, stderr io.Writer, deps rotateDeps) int {
	c, code := parseRotateFlags(args, stderr)
	if code >= 0 {
		return code
	}
	svc, err := parseService(c.service)
	if err != nil {
		fmt.Fprintf(stderr, "keyprov rotate: %s\n", redact.String(err.Error()))
		return exitUsage
	}
	raw, err := readNewKey(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "keyprov rotate: %v\n", err)
		return exitUsage
	}
	var files []string
	if c.envFile != "" {
		files = []string{c.envFile}
	}
	envs, err := loadEnvironments(files, env, c.inherit)
	if err != nil {
		fmt.Fprintf(stderr, "keyprov rotate: %s\n", redact.String(err.Error(), raw))
		return exitFail
	}
	r := &rotationRun{c: c, deps: deps, svc: svc, e: envs[0], raw: raw,
		log: &stepLog{w: stdout, json: c.jsonLines, secrets: []string{raw}}}
	if err := r.run(ctx); err != nil {
		if !errors.Is(err, errStopped) {
			fmt.Fprintf(stderr, "keyprov rotate: %s\n", oneLine(redact.String(err.Error(), raw)))
		}
		return exitFail
	}
	return exitOK
}

// errStopped is the error of a run the afterStep hook stopped.
var errStopped = errors.New("stopped")
