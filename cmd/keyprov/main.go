// Command keyprov checks, shows and watches the API keys of the services
// keyprovider knows (Tessera, Tesseral), resolving each one exactly as a
// service does: from the service's variable (TESSERA_API_KEY,
// TESSERAL_API_KEY), which holds the key itself or a reference to it
// (vault://, awssm://, op://, file://, env://), or from its _FILE variant.
//
// Usage:
//
//	keyprov check [--service tessera|tesseral|all] [--env-file FILE]... [--inherit-env] [--json] [--timeout D]
//	keyprov get   --service NAME [--env-file FILE] [--inherit-env] [--reveal] [--timeout D]
//	keyprov watch --service NAME [--env-file FILE] [--duration D]
//	keyprov rotate --service NAME [--env-file FILE] [--dry-run] [--no-verify] [--yes] [--write-file] [--wait D] [--json] < new-key
//	keyprov proxy --service NAME --token-file PATH [--env-file FILE]... [--listen 127.0.0.1:8787|unix:PATH] [--upstream URL] [--retry]
//	keyprov exec  [--env-file FILE]... [--only VAR]... [--on-rotate restart|signal:NAME|none] [--key-file VAR=PATH]... [FLAGS] -- PROGRAM [ARGS...]
//	keyprov emulate [--awssm ADDR] [--connect ADDR] [--seed FILE] [--allow-non-loopback] [--json]
//
// # check
//
// check resolves the key of each service and prints one line per key: the
// environment (the env file, or "environment" for the process's own), the
// service, the source (the reference, or "literal" for a key given as is;
// never the key), the version, the fingerprint, the latency and OK or the
// error. It exits 1 if any key failed. With --service all (the default) a
// service whose variable is not set at all is listed as skipped; name the
// service to require it.
//
// Each --env-file is one environment (dev.env, prod.env: KEY=VALUE lines,
// comments, quotes, no shell evaluation), so ops can check every environment
// from one machine. The file's variables are the whole environment its keys
// resolve in: every variable a backend needs (VAULT_ADDR, VAULT_TOKEN,
// OP_CONNECT_HOST, OP_CONNECT_TOKEN, AWS_ACCESS_KEY_ID...) must be set in the
// file, and AWS's shared files and instance role are not used unless the
// file names them. An env file may come from anywhere: were keyprov's own
// VAULT_TOKEN to fill a gap in a file that sets VAULT_ADDR, the operator's
// token would go to the host the file chose. --inherit-env lets the
// variables the file does not set fall back to keyprov's own environment
// (the service variables still come only from the file): use it for files
// you trust. check, get and watch read env files alike; watch never
// inherits.
//
// A reference that cannot be used is reported by what is wrong with it;
// any part of it that could be a key (a pasted key in place of a reference)
// is shown as its fingerprint, in text and in JSON.
//
// --json prints one JSON object per key (JSON Lines) for pipelines.
//
// # get
//
// get prints the fingerprint of one service's key. Only --reveal prints the
// key itself, for scripts:
//
//	curl -H "Authorization: Bearer $(keyprov get --service tessera --reveal)" ...
//
// # watch
//
// watch keeps the key of one service fresh as a service would (package
// rotate) and prints a line on every rotation and every failed refresh, until
// interrupted (SIGINT, SIGTERM) or --duration has passed. Use it while
// running a rotation runbook.
//
// # rotate
//
// rotate replaces the key of one service in the store its reference names
// (vault://, awssm://, op:// through Connect; file:// with --write-file)
// with the key read from stdin, never from the command line: stage it
// without making it current, verify it against the service's API, promote
// it, report the old and new fingerprints and versions. A failure leaves
// the old key current and says what, if anything, was left staged. Vault
// KV v1 and files cannot stage: --yes goes ahead there. --dry-run prints
// the plan and writes nothing; --json prints one object per step; --wait D
// polls until the store serves the new key, then says how to revoke the
// old one.
//
// # proxy
//
// proxy is a local credential-injecting proxy: an application points its
// OpenAI SDK (or any HTTP client) at http://127.0.0.1:8787/v1 with the local
// token of --token-file as its API key, and the proxy forwards each request
// to the upstream (--upstream, else TESSERA_BASE_URL / TESSERAL_BASE_URL,
// else the service's base URL) with the real key, kept fresh by package
// rotate; a 401 is replayed once with a refetched key. /healthz and /readyz
// answer without the token. It stops gracefully on SIGTERM. See README.md.
//
// # exec
//
// exec runs PROGRAM with the references of its environment resolved (every
// variable holding a vault://, awssm://, op://, env:// or file://
// reference, and TESSERA_API_KEY_FILE and the like), as FromEnv resolves
// them, and keeps it supplied with fresh keys: on a real change of a key it
// restarts the program (or signals it, or only logs). If a reference does
// not resolve, the program is not started. keyprov stays the parent,
// forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2, and exits
// with the program's status (128+N for a program killed by signal N).
// "keyprov exec -h" lists its flags.
//
// # emulate
//
// emulate runs the AWS Secrets Manager emulator (package awssmtest) and the
// 1Password Connect emulator (package onepasswordtest) on chosen addresses
// (--awssm 127.0.0.1:4566, --connect 127.0.0.1:8080; both when neither is
// given), seeded from a JSON or YAML file, for test suites in any language,
// as moto's server or LocalStack are run. It prints the environment a client
// needs (AWS_ENDPOINT_URL_SECRETS_MANAGER, the emulator's credentials,
// OP_CONNECT_HOST, OP_CONNECT_TOKEN) as export lines, or one JSON object
// with --json, once both emulators listen, and serves until interrupted:
//
//	keyprov emulate --seed seed.yaml > emulator.env &
//	until grep -q '^# serving' emulator.env 2>/dev/null; do sleep 0.1; done
//	. ./emulator.env   # then run the Python or Node suite
//
// Faults and rotation are reached over HTTP under /_emulator/ on each
// emulator. Addresses other than loopback need --allow-non-loopback. A
// malformed seed, a refused address or a port in use end it with an error
// before anything is served.
//
// # Smaller builds
//
// Built with -tags keyprov_no_awssm, keyprov_no_onepassword or
// keyprov_no_vault (any of them), keyprov leaves that backend and its SDK
// out, for a smaller sidecar; make keyprov BACKENDS="vault" in the
// repository builds it with only the backends named. A reference to a
// backend left out fails with an error saying how keyprov was built.
// emulate is only in builds with both awssm and onepassword.
//
// # Exit status
//
// 0 on success, 1 when a key failed to resolve (check, get) or the watch
// or the proxy could not start (or stopped serving), 2 on a usage error.
// exec exits with the program's status, or 125 when keyprov could not run
// it (a usage error, a reference that did not resolve, a key file it could
// not write: the program was not started), 126 when the program cannot be
// executed and 127 when it is not found.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// The backends whose references keyprov resolves are linked in by
// backend_awssm.go, backend_onepassword.go and backend_vault.go, each left
// out by its build tag (keyprov_no_awssm, keyprov_no_onepassword,
// keyprov_no_vault); see backends.go.

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], nil, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// lookupFunc reads a variable of an environment, as [os.LookupEnv] does.
// As the environment given to run, nil means the real process environment,
// whose backends use their own defaults (the AWS SDK's credential chain);
// a test gives a map.
type lookupFunc func(name string) (string, bool)

const usage = `usage:
  keyprov check [--service tessera|tesseral|all] [--env-file FILE]... [--inherit-env] [--json] [--timeout D]
  keyprov get   --service NAME [--env-file FILE] [--inherit-env] [--reveal] [--timeout D]
  keyprov watch --service NAME [--env-file FILE] [--duration D]
  keyprov rotate --service NAME [--env-file FILE] [--dry-run] [--no-verify] [--verify-url URL]
                 [--yes] [--write-file] [--wait D] [--json] < new-key
  keyprov proxy --service NAME --token-file PATH [--env-file FILE]... [--listen 127.0.0.1:8787|unix:PATH] [--upstream URL] [--retry]
  keyprov exec  [--env-file FILE]... [--only VAR]... [--on-rotate restart|signal:NAME|none] [FLAGS] -- PROGRAM [ARGS...]
  keyprov emulate [--awssm ADDR] [--connect ADDR] [--seed FILE(.json|.yaml)] [--allow-non-loopback] [--json]

Run "keyprov COMMAND -h" for a command's flags.
`

// run is keyprov with its arguments (without the program name), its
// environment and its output streams; it returns the exit status.
func run(ctx context.Context, args []string, env lookupFunc, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var cmd func(context.Context, []string, lookupFunc, io.Writer, io.Writer) int
	switch args[0] {
	case "check":
		cmd = runCheck
	case "get":
		cmd = runGet
	case "watch":
		cmd = runWatch
	case "rotate":
		return runRotate(ctx, args[1:], env, os.Stdin, stdout, stderr)
	case "proxy":
		cmd = runProxy
	case "exec":
		cmd = runExec
	case "emulate":
		cmd = runEmulate
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "keyprov: unknown command %q\n%s", args[0], usage)
		return exitUsage
	}
	return cmd(ctx, args[1:], env, stdout, stderr)
}

// newFlagSet returns a flag set for a command that reports errors on stderr
// and does not exit.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("keyprov "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args into fs and returns the exit status to return when
// parsing should stop the command (help, errors, stray arguments), or -1.
func parseFlags(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage
	}
	return -1
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string { return fmt.Sprint([]string(*s)) }

func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}
