package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/keyprovider/keyprovider"
)

// processEnvName names keyprov's own environment in the output.
const processEnvName = "environment"

// environment is where keys are resolved: keyprov's own environment, or an
// env file's.
type environment struct {
	// name is the env file's path, or processEnvName.
	name string
	// lookup reads the environment's variables; never nil.
	lookup lookupFunc
	// inject is what keyprov gives FromEnv as the environment: nil for the
	// process's own (backends then use their defaults, as a service
	// would), lookup for an env file or an environment a test injects.
	inject lookupFunc
}

// loadEnvironments returns the environments named by the --env-file flags:
// keyprov's own when there are none. process is keyprov's environment, nil
// for the real process environment. With inherit, an env file's
// environment falls back to process for the variables it does not set
// (except the services' key variables); without, it is complete on its own.
func loadEnvironments(files []string, process lookupFunc, inherit bool) ([]environment, error) {
	if len(files) == 0 {
		if process == nil {
			return []environment{{name: processEnvName, lookup: os.LookupEnv}}, nil
		}
		return []environment{{name: processEnvName, lookup: process, inject: process}}, nil
	}
	if process == nil {
		process = os.LookupEnv
	}
	envs := make([]environment, 0, len(files))
	for _, path := range files {
		f, err := readEnvFile(path)
		if err != nil {
			return nil, err
		}
		lookup := fileLookup(f.vars, process, inherit)
		envs = append(envs, environment{name: path, lookup: lookup, inject: lookup})
	}
	return envs, nil
}

// fileLookup makes the environment of an env file: its own variables, and
// nothing else unless inherit is set. An env file may come from anywhere;
// if keyprov's own VAULT_TOKEN, OP_CONNECT_TOKEN or AWS credentials filled
// its gaps, a file that sets VAULT_ADDR or OP_CONNECT_HOST to a host of its
// choosing would receive them. With inherit, every other variable
// (VAULT_ADDR, AWS_REGION...) falls back to keyprov's environment, where the
// operator's credentials live; the variables naming a known service's key
// (TESSERA_API_KEY and TESSERA_API_KEY_FILE...) still come only from the
// file, so that a key set in keyprov's own environment is never taken for
// the file's.
func fileLookup(vars map[string]string, process lookupFunc, inherit bool) lookupFunc {
	return func(name string) (string, bool) {
		if v, ok := vars[name]; ok {
			return v, true
		}
		if !inherit {
			return "", false
		}
		for _, svc := range keyprovider.KnownServices() {
			if name == svc.EnvVar || name == svc.EnvVar+"_FILE" {
				return "", false
			}
		}
		return process(name)
	}
}

// parseServices reads the --service flag: a name, a comma-separated list of
// names, or "all". explicit is false for "all": services that are not
// configured are then skipped rather than failed.
func parseServices(s string) (services []keyprovider.Service, explicit bool, err error) {
	if strings.EqualFold(strings.TrimSpace(s), "all") {
		return keyprovider.KnownServices(), false, nil
	}
	seen := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		svc, ok := lookupService(name)
		if !ok {
			return nil, false, fmt.Errorf("unknown service %q (known: %s, all)", name, knownServiceNames())
		}
		if !seen[svc.Name] {
			seen[svc.Name] = true
			services = append(services, svc)
		}
	}
	return services, true, nil
}

// parseService reads the --service flag of a command that handles one
// service.
func parseService(s string) (keyprovider.Service, error) {
	if s == "" {
		return keyprovider.Service{}, fmt.Errorf("--service is required (one of %s)", knownServiceNames())
	}
	svc, ok := lookupService(strings.TrimSpace(s))
	if !ok {
		return keyprovider.Service{}, fmt.Errorf("unknown service %q (known: %s)", s, knownServiceNames())
	}
	return svc, nil
}

func knownServiceNames() string {
	var names []string
	for _, s := range keyprovider.KnownServices() {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// configured reports whether svc's variable or its _FILE variant is set in
// the environment, even to an empty value.
func configured(svc keyprovider.Service, lookup lookupFunc) bool {
	_, ok := lookup(svc.EnvVar)
	_, okFile := lookup(svc.EnvVar + "_FILE")
	return ok || okFile
}

// errorKind classifies err for --json.
func errorKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, keyprovider.ErrNotFound):
		return "not_found"
	case errors.Is(err, keyprovider.ErrInvalidKey):
		return "invalid_key"
	case errors.Is(err, keyprovider.ErrPermission):
		return "permission"
	case errors.Is(err, keyprovider.ErrUnavailable):
		return "unavailable"
	default:
		return "error"
	}
}

// lookupService returns the known service named name ("tessera",
// "tesseral", in any case), and whether there is one.
func lookupService(name string) (keyprovider.Service, bool) {
	for _, s := range keyprovider.KnownServices() {
		if strings.EqualFold(s.Name, name) {
			return s, true
		}
	}
	return keyprovider.Service{}, false
}
