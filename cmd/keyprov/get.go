package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/keyprovider/keyprovider"
)

func runGet(ctx context.Context, args []string, env lookupFunc, stdout, stderr io.Writer) int {
	fs := newFlagSet("get", stderr)
	service := fs.String("service", "", "the service whose key to get: tessera or tesseral")
	envFile := fs.String("env-file", "", "an env file to resolve the key in; default: keyprov's own environment")
	reveal := fs.Bool("reveal", false, "print the key itself instead of its fingerprint")
	timeout := fs.Duration("timeout", 10*time.Second, "how long the key may take to resolve")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	svc, lookup, code := serviceIn("get", *service, *envFile, env, stderr)
	if code >= 0 {
		return code
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := resolve(ctx, svc, lookup)
	if err != nil {
		fmt.Fprintf(stderr, "keyprov get: %v\n", err)
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

// serviceIn parses the --service and --env-file flags shared by get and
// watch: the service, and the environment to resolve its key in (the env
// file's, or keyprov's own). A non-negative code means: stop with it.
func serviceIn(cmd, service, envFile string, env lookupFunc, stderr io.Writer) (keyprovider.Service, lookupFunc, int) {
	svc, err := parseService(service)
	if err != nil {
		fmt.Fprintf(stderr, "keyprov %s: %v\n", cmd, err)
		return svc, nil, exitUsage
	}
	var files []string
	if envFile != "" {
		files = []string{envFile}
	}
	envs, err := loadEnvironments(files, env)
	if err != nil {
		fmt.Fprintf(stderr, "keyprov %s: %v\n", cmd, err)
		return svc, nil, exitFail
	}
	return svc, envs[0].lookup, -1
}
