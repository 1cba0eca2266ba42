//go:build !keyprov_no_awssm && !keyprov_no_onepassword

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"

	"github.com/keyprovider/keyprovider/awssm/awssmtest"
	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

// Default addresses of keyprov emulate: LocalStack's port for Secrets
// Manager, Connect's own for the Connect API.
const (
	defaultAWSSMAddr   = "127.0.0.1:4566"
	defaultConnectAddr = "127.0.0.1:8080"
)

// emulateFlags are keyprov emulate's flags, parsed.
type emulateFlags struct {
	awssm, connect string // "" when not started
	seed           string
	allowPublic    bool
	json           bool
}

// runEmulate is keyprov emulate: the AWS Secrets Manager and 1Password
// Connect emulators on chosen addresses, seeded from a file, until ctx ends.
func runEmulate(ctx context.Context, args []string, _ lookupFunc, stdout, stderr io.Writer) int {
	f, code := parseEmulateFlags(args, stderr)
	if code >= 0 {
		return code
	}
	for _, addr := range []string{f.awssm, f.connect} {
		if err := checkLoopback(addr, f.allowPublic); err != nil {
			fmt.Fprintf(stderr, "keyprov emulate: %v\n", err)
			return exitUsage
		}
	}
	var sd seed
	if f.seed != "" {
		var err error
		if sd, err = readSeed(f.seed); err != nil {
			fmt.Fprintf(stderr, "keyprov emulate: %v\n", err)
			return exitFail
		}
	}
	if err := sd.fits(f); err != nil {
		fmt.Fprintf(stderr, "keyprov emulate: %v\n", err)
		return exitUsage
	}
	env, closeAll, err := startEmulators(ctx, f, sd)
	if err != nil {
		fmt.Fprintf(stderr, "keyprov emulate: %v\n", err)
		return exitFail
	}
	defer closeAll()
	if err := printEnv(stdout, env, f.json); err != nil {
		fmt.Fprintf(stderr, "keyprov emulate: %v\n", err)
		return exitFail
	}
	<-ctx.Done()
	return exitOK
}

func parseEmulateFlags(args []string, stderr io.Writer) (emulateFlags, int) {
	fs := newFlagSet("emulate", stderr)
	var f emulateFlags
	fs.StringVar(&f.awssm, "awssm", "", "serve AWS Secrets Manager on this address (default "+defaultAWSSMAddr+" when neither emulator is chosen)")
	fs.StringVar(&f.connect, "connect", "", "serve the 1Password Connect API on this address (default "+defaultConnectAddr+" when neither emulator is chosen)")
	fs.StringVar(&f.seed, "seed", "", "a JSON or YAML file of secrets and vaults to start with")
	fs.BoolVar(&f.allowPublic, "allow-non-loopback", false, "allow listening on addresses other than loopback")
	fs.BoolVar(&f.json, "json", false, "print the environment as one JSON object instead of export lines")
	if code := parseFlags(fs, args); code >= 0 {
		return f, code
	}
	if f.awssm == "" && f.connect == "" {
		f.awssm, f.connect = defaultAWSSMAddr, defaultConnectAddr
	}
	return f, -1
}

// checkLoopback refuses an address that is not on loopback, unless allowed:
// the emulators accept well-known credentials and must not be reachable
// from the network by accident.
func checkLoopback(addr string, allowed bool) error {
	if addr == "" || allowed {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if isLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("address %q is not loopback (127.0.0.1, ::1, localhost); pass --allow-non-loopback to listen there", addr)
}

// envVar is one variable of the environment a client needs.
type envVar struct{ name, value string }

// startEmulators starts the chosen emulators, seeds them and returns the
// environment their clients need; closeAll stops them.
func startEmulators(ctx context.Context, f emulateFlags, sd seed) (env []envVar, closeAll func(), err error) {
	var closers []func()
	closeAll = func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	if f.awssm != "" {
		a := sd.AWSSM
		srv, err := awssmtest.New(awssmtest.WithAddr(f.awssm), awssmtest.WithRegion(a.Region),
			awssmtest.WithAccessKeyID(a.AccessKeyID), awssmtest.WithSecretAccessKey(a.SecretAccessKey),
			awssmtest.WithSessionToken(orRandom(a.SessionToken)))
		if err != nil {
			return nil, closeAll, err
		}
		closers = append(closers, srv.Close)
		if err := applyAWSSM(ctx, srv, a.Secrets); err != nil {
			return nil, closeAll, err
		}
		o := srv.ClientOptions()
		creds, _ := o.Credentials.Retrieve(ctx)
		env = append(env, envVar{"AWS_ENDPOINT_URL_SECRETS_MANAGER", srv.URL()},
			envVar{"AWS_ACCESS_KEY_ID", creds.AccessKeyID}, envVar{"AWS_SECRET_ACCESS_KEY", creds.SecretAccessKey},
			envVar{"AWS_SESSION_TOKEN", creds.SessionToken},
			envVar{"AWS_REGION", srv.Region()}, envVar{"AWS_DEFAULT_REGION", srv.Region()})
	}
	if f.connect != "" {
		srv, err := onepasswordtest.New(onepasswordtest.WithAddr(f.connect), onepasswordtest.WithToken(sd.Connect.Token))
		if err != nil {
			return nil, closeAll, err
		}
		closers = append(closers, srv.Close)
		if err := applyConnect(srv, sd.Connect.Vaults); err != nil {
			return nil, closeAll, err
		}
		env = append(env, envVar{"OP_CONNECT_HOST", srv.URL}, envVar{"OP_CONNECT_TOKEN", srv.Token})
	}
	return env, closeAll, nil
}

// orRandom returns s, or a random session token when s is empty.
func orRandom(s string) string {
	if s != "" {
		return s
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "emulator-session-" + hex.EncodeToString(b)
}

// printEnv prints the environment as export lines, each value quoted for
// POSIX shells (eval "$(keyprov emulate ...)" works), or as JSON.
func printEnv(w io.Writer, env []envVar, asJSON bool) error {
	if asJSON {
		m := map[string]string{}
		for _, e := range env {
			m[e.name] = e.value
		}
		return json.NewEncoder(w).Encode(m)
	}
	var b strings.Builder
	for _, e := range env {
		fmt.Fprintf(&b, "export %s=%s\n", e.name, shellQuote(e.value))
	}
	for _, e := range env {
		switch e.name {
		case "AWS_ENDPOINT_URL_SECRETS_MANAGER":
			fmt.Fprintf(&b, "# awssm control: %s%s\n", e.value, awssmtest.ControlPath)
		case "OP_CONNECT_HOST":
			fmt.Fprintf(&b, "# connect control: %s%s\n", e.value, onepasswordtest.ControlPath)
		}
	}
	b.WriteString("# serving until interrupted (Ctrl-C)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// errSeed marks a seed file that cannot be used.
var errSeed = errors.New("bad seed")
