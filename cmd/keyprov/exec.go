package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/envread"
	"github.com/keyprovider/keyprovider/internal/supervise"
)

// forwardedSignals are the signals keyprov exec passes on to the child.
var forwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP,
	syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// runExec is keyprov exec: it resolves the references of the child's
// environment, runs the program after "--" with their keys, and keeps it
// supplied with fresh keys. See the package doc.
func runExec(ctx context.Context, args []string, env lookupFunc, stdout, stderr io.Writer) int {
	environ := os.Environ()
	if env != nil {
		environ = environFrom(env)
	}
	cfg, code := prepareExec(ctx, args, environ, env == nil, stderr)
	if code >= 0 {
		return code
	}
	if os.Getpid() == 1 {
		// A container's init: the orphans of the program's processes become
		// keyprov's, and would stay zombies.
		defer supervise.ReapOrphans()()
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)
	cfg.signals = sigs
	cfg.stdin, cfg.stdout, cfg.stderr = os.Stdin, stdout, stderr
	cfg.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	// The Sources' own lines, but for failures, repeat exec's.
	cfg.rotateLog = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: max(cfg.logLevel, slog.LevelWarn)}))
	if cfg.metricsListen != "" {
		stop, err := execMetrics(&cfg)
		if err != nil {
			closeBindings(cfg.bindings)
			fmt.Fprintf(stderr, "keyprov exec: %v\n", err)
			return exitExecFailed
		}
		defer stop()
	}
	// main cancels ctx on SIGINT and SIGTERM: here those go to the child,
	// and keyprov ends when it does.
	return execute(context.WithoutCancel(ctx), cfg)
}

// prepareExec reads the command line, builds the child's environment from
// environ and the env files, and opens every reference to resolve. environ
// is the process's own environment when processEnv is set: the backends
// then read it as a service would (the AWS SDK's whole credential chain);
// otherwise they read environ and the env files alone. It returns the exit
// status when keyprov exec is to stop there, or -1.
func prepareExec(ctx context.Context, args, environ []string, processEnv bool, stderr io.Writer) (execConfig, int) {
	cfg, files, only, code := parseExecArgs(args, stderr)
	if code >= 0 {
		return execConfig{}, code
	}
	fail := func(format string, args ...any) (execConfig, int) {
		fmt.Fprintf(stderr, "keyprov exec: "+format+"\n", args...)
		return execConfig{}, exitExecFailed
	}
	var envFiles []envFile
	for _, path := range files {
		f, err := readEnvFile(path)
		if err != nil {
			return fail("%v", err)
		}
		envFiles = append(envFiles, f)
	}
	cfg.env = newChildEnv(environ, envFiles)
	// The backends read the environment as it was before keyprov changes
	// the child's (scrubbing, keys in files): an env:// reference is read
	// again on every refresh.
	var inject lookupFunc
	if !processEnv || len(envFiles) > 0 {
		snapshot := maps.Clone(cfg.env.vars)
		inject = func(name string) (string, bool) { v, ok := snapshot[name]; return v, ok }
	}
	octx, cancel := context.WithTimeout(ctx, cfg.timeout)
	bs, err := bindings(octx, cfg.env, inject, only)
	cancel()
	if err != nil {
		return fail("%v", err)
	}
	for name := range cfg.keyFiles {
		if !slices.ContainsFunc(bs, func(b binding) bool { return b.name == name }) {
			closeBindings(bs)
			return fail("--key-file %s: the variable holds no reference keyprov resolves", name)
		}
	}
	cfg.bindings = bs
	for _, b := range bs {
		if b.drop != "" {
			cfg.env.unset(b.drop)
		}
		if _, ok := cfg.env.lookup(b.name); !ok { // set by its _FILE twin alone
			cfg.env.set(b.name, "")
		}
	}
	if cfg.scrubEnv {
		cfg.env.scrub()
	}
	return cfg.execConfig, -1
}

// execFlags is what parseExecArgs reads.
type execFlags struct {
	execConfig
	scrubEnv    bool
	allowRemote bool
}

// parseExecArgs reads keyprov exec's flags and the program after them.
func parseExecArgs(args []string, stderr io.Writer) (cfg execFlags, files, only []string, code int) {
	fs := newFlagSet("exec", stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: keyprov exec [FLAGS] -- PROGRAM [ARGS...]\n\n"+
			"Runs PROGRAM with the references in its environment resolved, and follows rotation.\n"+
			"Exits with PROGRAM's status (128+N for signal N); 125 when keyprov could not run it\n"+
			"(nothing was started), 126 when it cannot be executed, 127 when it is not found.\n\n")
		fs.PrintDefaults()
	}
	var envFiles, onlyVars, keyFiles stringsFlag
	fs.Var(&envFiles, "env-file", "an env file whose variables are added to the environment (repeatable; later files win)")
	fs.Var(&onlyVars, "only", "resolve only this variable (repeatable); other references pass through")
	fs.Var(&keyFiles, "key-file", "VAR=PATH: write VAR's key to PATH (0600) instead of the environment, set VAR_FILE=PATH (repeatable)")
	onRotate := fs.String("on-rotate", "restart", "on a new key: restart, signal:NAME (signal:HUP) or none")
	stopSig := fs.String("stop-signal", "TERM", "the signal that stops the program for a restart")
	fs.DurationVar(&cfg.stopTimeout, "stop-timeout", 10*time.Second, "how long a stopped program has to exit before SIGKILL")
	fs.DurationVar(&cfg.refresh, "refresh-interval", 0, "how often each key is fetched again; 0: rotate's default (5m)")
	fs.DurationVar(&cfg.debounce, "debounce", 2*time.Second, "how long to wait for more new keys before acting on one")
	fs.DurationVar(&cfg.splay, "splay", 0, "a random extra delay, up to this, before acting on new keys")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "how long resolving the keys may take before the program starts")
	fs.BoolVar(&cfg.restartOnExit, "restart-on-exit", false, "start the program again when it exits on its own")
	fs.BoolVar(&cfg.scrubEnv, "scrub", false, "remove the backends' settings and credentials (VAULT_*, OP_CONNECT_*, AWS keys...) from the program's environment")
	logLevel := fs.String("log-level", "info", "what keyprov logs on stderr: debug, info, warn or error")
	fs.StringVar(&cfg.metricsListen, "metrics-listen", "", "serve the keys' metrics on /metrics at this loopback host:port (off by default)")
	fs.BoolVar(&cfg.allowRemote, "allow-non-loopback", false, "allow --metrics-listen on an address that is not loopback")
	fs.BoolVar(&cfg.mask, "mask", false, "replace the keys in the program's stdout and stderr with their fingerprints (line-buffered)")
	usageErr := func(format string, args ...any) (execFlags, []string, []string, int) {
		fmt.Fprintf(stderr, "keyprov exec: "+format+"\n", args...)
		return cfg, nil, nil, exitExecFailed
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, nil, nil, exitOK
		}
		return cfg, nil, nil, exitExecFailed
	}
	cfg.argv = fs.Args()
	if len(cfg.argv) == 0 {
		return usageErr("no program to run: keyprov exec [FLAGS] -- PROGRAM [ARGS...]")
	}
	var err error
	if cfg.onRotate, err = parseOnRotate(*onRotate); err != nil {
		return usageErr("--on-rotate: %v", err)
	}
	if err := cfg.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageErr("--log-level: want debug, info, warn or error")
	}
	if cfg.stopSignal, err = parseSignal(*stopSig); err != nil {
		return usageErr("--stop-signal: %v", err)
	}
	for _, d := range []time.Duration{cfg.stopTimeout, cfg.refresh, cfg.debounce, cfg.splay, cfg.timeout} {
		if d < 0 {
			return usageErr("durations must not be negative")
		}
	}
	if cfg.metricsListen != "" {
		if err := parseMetricsListen(cfg.metricsListen, cfg.allowRemote); err != nil {
			return usageErr("%v", err)
		}
	}
	cfg.keyFiles = map[string]string{}
	for _, kf := range keyFiles {
		name, path, ok := strings.Cut(kf, "=")
		if !ok || !validEnvName(name) || path == "" {
			return usageErr("--key-file takes VAR=PATH")
		}
		if cfg.keyFiles[name], err = filepath.Abs(path); err != nil {
			return usageErr("--key-file %s: %v", name, err)
		}
	}
	return cfg, envFiles, onlyVars, -1
}

// execMetrics serves /metrics on cfg.metricsListen for the Sources
// execute makes, which record on its MeterProvider. stop closes the
// listener and the MeterProvider.
func execMetrics(cfg *execConfig) (stop func(), err error) {
	m, err := newPromMetrics()
	if err != nil {
		return nil, err
	}
	srv, err := serveMetrics(cfg.metricsListen, m, cfg.log)
	if err != nil {
		m.shutdown()
		return nil, err
	}
	cfg.meterProvider = m.mp
	return func() { srv.stop(); m.shutdown() }, nil
}

// parseOnRotate reads --on-rotate.
func parseOnRotate(s string) (rotateAction, error) {
	switch s {
	case "restart", "none":
		return rotateAction{kind: s}, nil
	}
	if name, ok := strings.CutPrefix(s, "signal:"); ok {
		sig, err := parseSignal(name)
		return rotateAction{kind: "signal", sig: sig}, err
	}
	return rotateAction{}, fmt.Errorf("%q: want restart, signal:NAME or none", s)
}

// signalNames are the signals --on-rotate and --stop-signal take by name.
var signalNames = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "KILL": syscall.SIGKILL,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "TERM": syscall.SIGTERM, "ALRM": syscall.SIGALRM,
	"WINCH": syscall.SIGWINCH, "CONT": syscall.SIGCONT, "STOP": syscall.SIGSTOP, "TSTP": syscall.SIGTSTP,
}

// parseSignal reads a signal by name (HUP, SIGHUP, hup) or number.
func parseSignal(s string) (syscall.Signal, error) {
	name := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "SIG")
	if sig, ok := signalNames[name]; ok {
		return sig, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// environFrom lists an injected environment (a test's) as os.Environ
// would: the variables of the process's environment, the services' and
// the backends' variables, as env has them.
func environFrom(env lookupFunc) []string {
	var names []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		names = append(names, name)
	}
	for _, svc := range keyprovider.KnownServices() {
		names = append(names, svc.EnvVar, svc.EnvVar+envread.FileSuffix)
	}
	names = append(names, scrubbedVars...)
	var out []string
	seen := map[string]bool{}
	for _, name := range names {
		if v, ok := env(name); ok && !seen[name] {
			seen[name] = true
			out = append(out, name+"="+v)
		}
	}
	return out
}

// randFloat is the splay's draw.
func randFloat() float64 { return rand.Float64() }
