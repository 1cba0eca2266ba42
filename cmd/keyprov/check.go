package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
)

// Statuses of a check result.
const (
	statusOK      = "ok"
	statusFailed  = "failed"
	statusSkipped = "skipped"
)

// result is the outcome of resolving one service's key in one environment:
// one line of "keyprov check". It holds no key.
type result struct {
	// Env is the env file, or "environment" for keyprov's own.
	Env string `json:"env"`
	// Service is the service's name: "tessera".
	Service string `json:"service"`
	// Variable is the variable the key came from: "TESSERA_API_KEY" or
	// "TESSERA_API_KEY_FILE".
	Variable string `json:"variable,omitempty"`
	// Source is the reference the variable holds, or "literal".
	Source string `json:"source,omitempty"`
	// Version is the backend's version of the secret, if any.
	Version string `json:"version,omitempty"`
	// Fingerprint is the key's fingerprint, when it resolved.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Latency is how long the resolution took.
	Latency time.Duration `json:"-"`
	// LatencyMS is Latency in milliseconds, for JSON.
	LatencyMS float64 `json:"latency_ms"`
	// Status is "ok", "failed" or "skipped".
	Status string `json:"status"`
	// Kind classifies a failure: "not_found", "invalid_key",
	// "permission", "unavailable", "timeout", "canceled" or "error".
	Kind string `json:"kind,omitempty"`
	// Error is the failure, which never holds a key.
	Error string `json:"error,omitempty"`
}

func runCheck(ctx context.Context, args []string, env lookupFunc, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", stderr)
	service := fs.String("service", "all", "the service to check: tessera, tesseral, a comma-separated list, or all")
	var envFiles stringsFlag
	fs.Var(&envFiles, "env-file", "an env file to resolve keys in, one per environment (repeatable); default: keyprov's own environment")
	inherit := fs.Bool("inherit-env", false, inheritEnvUsage)
	asJSON := fs.Bool("json", false, "print one JSON object per key")
	timeout := fs.Duration("timeout", 10*time.Second, "how long one key may take to resolve")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	services, explicit, err := parseServices(*service)
	if err != nil {
		fmt.Fprintf(stderr, "keyprov check: %v\n", err)
		return exitUsage
	}
	envs, err := loadEnvironments(envFiles, env, *inherit)
	if err != nil {
		fmt.Fprintf(stderr, "keyprov check: %v\n", err)
		return exitFail
	}

	var results []result
	var empty []string // environments where no service is configured
	for _, e := range envs {
		n := 0
		for _, svc := range services {
			if !explicit && !configured(svc, e.lookup) {
				results = append(results, result{
					Env: e.name, Service: svc.Name, Status: statusSkipped,
					Error: svc.EnvVar + " is not set",
				})
				continue
			}
			n++
			results = append(results, checkOne(ctx, svc, e, *timeout))
		}
		if n == 0 {
			empty = append(empty, e.name)
		}
	}

	if *asJSON {
		writeJSONResults(stdout, results)
	} else {
		writeTextResults(stdout, results)
	}
	code := exitOK
	for _, r := range results {
		if r.Status == statusFailed {
			code = exitFail
		}
	}
	for _, name := range empty {
		// A whole environment without keys is a broken deploy, not a pass.
		fmt.Fprintf(stderr, "keyprov check: %s: no key configured (none of %s is set)\n", name, envVarList(services))
		code = exitFail
	}
	return code
}

// checkOne resolves svc's key in e and reports the outcome.
func checkOne(ctx context.Context, svc keyprovider.Service, e environment, timeout time.Duration) result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	res, err := resolve(ctx, svc, e)
	latency := time.Since(start)
	r := result{
		Env:       e.name,
		Service:   svc.Name,
		Variable:  res.variable,
		Source:    res.source,
		Latency:   latency,
		LatencyMS: float64(latency.Microseconds()) / 1000,
		Status:    statusOK,
	}
	if err != nil {
		r.Status, r.Kind, r.Error = statusFailed, errorKind(err), redact.String(err.Error())
		return r
	}
	r.Version, r.Fingerprint = res.key.Version(), res.key.Fingerprint()
	return r
}

func writeJSONResults(w io.Writer, results []result) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range results {
		_ = enc.Encode(r)
	}
}

func writeTextResults(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENV\tSERVICE\tSOURCE\tVERSION\tFINGERPRINT\tLATENCY\tRESULT")
	for _, r := range results {
		source := r.Source
		if r.Variable != "" && source != "" {
			source += " (" + r.Variable + ")"
		}
		outcome := "OK"
		latency := formatLatency(r.Latency)
		switch r.Status {
		case statusFailed:
			outcome = "FAIL: " + oneLine(r.Error)
		case statusSkipped:
			outcome, latency = "SKIP: "+r.Error, "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Env, r.Service, dash(source), dash(r.Version), dash(r.Fingerprint), latency, outcome)
	}
	_ = tw.Flush()
}

// formatLatency rounds d for a human: 0.4ms, 12ms, 1.2s.
func formatLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a multi-line error (Vault's, for one) on one line, so that
// tabwriter keeps its columns.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func envVarList(services []keyprovider.Service) string {
	names := make([]string, len(services))
	for i, s := range services {
		names[i] = s.EnvVar
	}
	return strings.Join(names, ", ")
}
