package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotation"
)

// errNotWritable is the cause of a rotation refused for the kind of source.
var errNotWritable = errors.New("keyprov cannot rotate a key kept there")

// openWriter opens the store the key's reference names for writing.
func (r *rotationRun) openWriter(ctx context.Context) error {
	ref := r.src.Ref
	switch ref.Scheme {
	case "":
		return r.fail("stage", fmt.Errorf("%w: %s holds the key itself (a literal)", errNotWritable, r.src.Var),
			"put the new key where the deployment sets "+r.src.Var+", or point it at a store keyprov can write (vault://, awssm://, op://)")
	case "env":
		return r.fail("stage", fmt.Errorf("%w: an env:// reference names another variable (%s)", errNotWritable, ref.Path),
			"set the new key where the deployment sets that variable")
	case "file":
		if !r.c.writeFile {
			return r.fail("stage", fmt.Errorf("%w: a file (%s) without --write-file", errNotWritable, ref.Path),
				"a file is usually mounted by an orchestrator (a Kubernetes Secret): rotate it there, or pass --write-file to rewrite it in place (atomic rename, mode kept; no staging, so --yes too)")
		}
		r.w = fileWriter{path: ref.Path}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.c.timeout)
	defer cancel()
	p, err := openRef(ctx, ref.String(), r.svc, keyprovider.WithLookupEnv(r.e.inject))
	if err != nil {
		return r.fail("stage", err, "opening "+r.source)
	}
	if c, ok := p.(io.Closer); ok {
		r.closer = func() { _ = c.Close() }
	}
	w, ok := p.(rotation.Writer)
	if !ok {
		return r.fail("stage", fmt.Errorf("%w: the %s:// backend cannot write", errNotWritable, ref.Scheme), "")
	}
	r.w = w
	return nil
}

// plan is what --dry-run prints: the steps, nothing written.
func (r *rotationRun) plan() {
	var stage string
	switch r.src.Ref.Scheme {
	case "awssm":
		stage = "PutSecretValue of a version labelled AWSPENDING only, with ClientRequestToken " + rotationToken(r)
	case "vault":
		stage = "nothing written: on KV v2 the new version is written after verification, with check-and-set on version " + dash(r.current.Version()) + "; on KV v1 there is no staging (--yes needed) and the write replaces the secret"
	case "op":
		stage = "nothing written: the item's field is updated after verification, the old value kept in a field \"<field> (previous)\""
	case "file":
		stage = "nothing written: the file is replaced after verification (atomic rename, mode kept); no staging, --yes needed"
	}
	verify := "skipped (--no-verify)"
	if !r.c.noVerify {
		target, err := r.verifyTarget()
		if err != nil {
			verify = "cannot: " + err.Error()
		} else {
			verify = "GET " + target + " with the new key; 401/403 abort, 429/5xx retried then abort"
		}
	}
	for _, e := range []stepEvent{
		{Step: "stage", Status: "planned", Message: stage, Fingerprint: r.next.Fingerprint()},
		{Step: "verify", Status: "planned", Message: verify},
		{Step: "promote", Status: "planned", Message: "make the new key current; the old one stays readable where the store keeps one"},
		{Step: "report", Status: "planned", Message: "dry run: nothing was written"},
	} {
		r.log.log(e)
	}
}

func rotationToken(r *rotationRun) string {
	return awssmRequestToken(r.next, r.current.Version())
}

// stage stages the new key; a store that cannot stage needs --yes.
func (r *rotationRun) stage(ctx context.Context) (rotation.Staged, error) {
	sctx, cancel := context.WithTimeout(ctx, r.c.timeout)
	defer cancel()
	st, err := r.w.Stage(sctx, r.current, r.next)
	if err != nil {
		return st, r.fail("stage", err, "nothing was staged; the old key is current")
	}
	switch st.Mode {
	case rotation.Unconditional:
		if !r.c.yes {
			return st, r.fail("stage", errors.New("this store has no staging and no check-and-set: the write would be immediate, and the old key gone"),
				"nothing was written; run again with --yes to go ahead")
		}
		r.log.log(stepEvent{Step: "stage", Status: "skipped", Message: "this store has no staging (--yes): the new key is written on promotion, unconditionally", Fingerprint: r.next.Fingerprint()})
	case rotation.Deferred:
		r.log.log(stepEvent{Step: "stage", Status: statusOK, Message: "nothing written yet: the new key is written on promotion, conditioned on version " + dash(st.Current), Fingerprint: r.next.Fingerprint()})
	default:
		r.log.log(stepEvent{Step: "stage", Status: statusOK, Message: "staged, not current", Fingerprint: st.Next.Fingerprint(), Version: st.Version})
	}
	return st, r.step("stage")
}

// verifyTarget is the URL verify GETs.
func (r *rotationRun) verifyTarget() (string, error) {
	base, err := serviceBaseURL(r.svc, "--verify-url", r.c.verifyURL, r.e.lookup)
	if err != nil {
		return "", err
	}
	return verifyURL(r.svc, base), nil
}

// verify tests the new key against the live API.
func (r *rotationRun) verify(ctx context.Context) error {
	if r.c.noVerify {
		r.log.log(stepEvent{Step: "verify", Status: "skipped", Message: "--no-verify: the new key was not tested"})
		return r.step("verify")
	}
	target, err := r.verifyTarget()
	if err != nil {
		return r.fail("verify", err, "")
	}
	err = r.deps.verifier.verify(ctx, target, r.next, func(n, status int) {
		if status != 0 && (status < 200 || status >= 300) {
			r.log.log(stepEvent{Step: "verify", Status: "info", Message: fmt.Sprintf("attempt %d: HTTP %d", n, status)})
		}
	})
	if err != nil {
		return r.fail("verify", err, "GET "+target)
	}
	r.log.log(stepEvent{Step: "verify", Status: statusOK, Message: "the service accepts the new key (GET " + target + ")", Fingerprint: r.next.Fingerprint()})
	return r.step("verify")
}

// promote makes the staged key current.
func (r *rotationRun) promote(ctx context.Context, st rotation.Staged) (keyprovider.Key, error) {
	pctx, cancel := context.WithTimeout(ctx, r.c.timeout)
	defer cancel()
	now, err := r.w.Promote(pctx, st)
	if err != nil {
		left := "nothing was written; the old key is current"
		switch {
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			left = "the store did not answer in time: the write may or may not have landed; run keyprov check to see which key is current"
		case st.Mode == rotation.Pending:
			left = "the old key is current; version " + st.Version + " is left marked AWSPENDING (readers of AWSCURRENT never get it; a re-run or the next rotation moves the label)"
		}
		return now, r.fail("promote", err, left)
	}
	r.log.log(stepEvent{Step: "promote", Status: statusOK, Message: "the new key is current", Fingerprint: now.Fingerprint(), Version: now.Version()})
	return now, r.step("promote")
}

// abandon undoes the stage after a failed verification, and reports.
func (r *rotationRun) abandon(ctx context.Context, st rotation.Staged, cause error) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.c.timeout)
	defer cancel()
	left, err := r.w.Abandon(actx, st)
	if err != nil {
		r.log.log(stepEvent{Step: "abandon", Status: statusFailed, Kind: errorKind(err), Error: err.Error(), Message: "the old key is current; " + left})
		return fmt.Errorf("%w; abandoning: %w", cause, err)
	}
	r.log.log(stepEvent{Step: "abandon", Status: statusOK, Message: "the old key is current; " + left})
	return cause
}
