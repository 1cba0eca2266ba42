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
// # Exit status
//
// 0 on success, 1 when a key failed to resolve (check, get) or the watch
// could not start, 2 on a usage error.
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

	// The backends whose references keyprov resolves.
	_ "github.com/keyprovider/keyprovider/awssm"
	_ "github.com/keyprovider/keyprovider/onepassword"
	_ "github.com/keyprovider/keyprovider/vault"
)

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
