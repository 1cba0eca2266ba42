package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
)

func runGet(ctx context.Context, args []string, env lookupFunc, stdout, stderr io.Writer) int {
	fs := newFlagSet("get", stderr)
	service := fs.String("service", "", "the service whose key to get: tessera or tesseral")
	envFile := fs.String("env-file", "", "an env file to resolve the key in; default: keyprov's own environment")
	reveal := fs.Bool("reveal", false, "print the key itself instead of its fingerprint")
	inherit := fs.Bool("inherit-env", false, inheritEnvUsage)
	timeout := fs.Duration("timeout", 10*time.Second, "how long the key may take to resolve")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	svc, e, code := serviceEnv("get", *service, *envFile, *inherit, env, stderr)
	if code >= 0 {
		return code
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := resolve(ctx, svc, e)
	if err != nil {
		fmt.Fprintf(stderr, "keyprov get: %s\n", redact.String(err.Error()))
		return exitFail
	}
	if *reveal {
		// The one place keyprov prints a key: asked for explicitly.
		fmt.Fprintln(stdout, res.key.Reveal())
		return exitOK
	}
	fmt.Fprintln(stdout, res.key.Fingerprint())
	return exitOK
}

// inheritEnvUsage is the help of the --inherit-env flag of every command
// that takes --env-file.
const inheritEnvUsage = "let an env file's environment fall back to keyprov's own for the variables it does not set " +
	"(VAULT_ADDR, VAULT_TOKEN, OP_CONNECT_TOKEN, AWS credentials...); default: the file's environment is complete on its own, " +
	"so keyprov's own credentials are never sent to a host an env file names"

// serviceEnv parses the --service, --env-file and --inherit-env flags
// shared by get and watch: the service, and the environment to resolve its
// key in (its inject is the lookup to give [keyprovider.WithLookupEnv], nil
// for keyprov's own). An env file's environment is complete on its own
// unless inherit (see [fileLookup]). A non-negative code means: stop with
// it.
func serviceEnv(cmd, service, envFile string, inherit bool, env lookupFunc, stderr io.Writer) (keyprovider.Service, environment, int) {
	svc, err := parseService(service)
	if err != nil {
		fmt.Fprintf(stderr, "keyprov %s: %v\n", cmd, err)
		return svc, environment{}, exitUsage
	}
	var files []string
	if envFile != "" {
		files = []string{envFile}
	}
	envs, err := loadEnvironments(files, env, inherit)
	if err != nil {
		fmt.Fprintf(stderr, "keyprov %s: %v\n", cmd, err)
		return svc, environment{}, exitFail
	}
	return svc, envs[0], -1
}
