package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotation"
)

// rotationRun is one keyprov rotate: the steps resolve, validate, stage,
// verify, promote, report (and wait), each logged. A failure after staging
// abandons what was staged, so the old key stays current, and says what
// was left.
type rotationRun struct {
	c    rotateConfig
	deps rotateDeps
	svc  keyprovider.Service
	e    environment
	raw  string // the new key, as read
	log  *stepLog

	source  string
	src     keyprovider.EnvSource
	current keyprovider.Key
	next    keyprovider.Key
	w       rotation.Writer
	closer  func()
}

func (r *rotationRun) run(ctx context.Context) error {
	defer func() {
		if r.closer != nil {
			r.closer()
		}
	}()
	if err := r.resolve(ctx); err != nil {
		return err
	}
	if err := r.validate(); err != nil {
		return err
	}
	if err := r.openWriter(ctx); err != nil {
		return err
	}
	if r.c.dryRun {
		r.plan()
		return nil
	}
	st, err := r.stage(ctx)
	if err != nil {
		return err
	}
	if err := r.verify(ctx); err != nil {
		if errors.Is(err, errStopped) {
			return err
		}
		return r.abandon(ctx, st, err)
	}
	now, err := r.promote(ctx, st)
	if err != nil {
		return err
	}
	r.log.log(stepEvent{Step: "report", Status: statusOK, Message: "rotated: the new key is current",
		OldFingerprint: r.current.Fingerprint(), OldVersion: r.current.Version(),
		Fingerprint: now.Fingerprint(), Version: now.Version()})
	if r.c.wait > 0 {
		if err := r.waitServed(ctx, now); err != nil {
			return err
		}
	}
	r.log.log(stepEvent{Step: "revoke", Status: "info", OldFingerprint: r.current.Fingerprint(), OldVersion: r.current.Version(), Message: revokeHint(r.svc)})
	return nil
}

// step runs the afterStep hook.
func (r *rotationRun) step(name string) error {
	if err := r.deps.afterStep(name); err != nil {
		return fmt.Errorf("%w after %s: %w", errStopped, name, err)
	}
	return nil
}

func (r *rotationRun) fail(step string, err error, msg string) error {
	r.log.log(stepEvent{Step: step, Status: statusFailed, Kind: errorKind(err), Error: err.Error(), Message: msg})
	return fmt.Errorf("%s: %w", step, err)
}

// resolve reads the current key as check does.
func (r *rotationRun) resolve(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.c.timeout)
	defer cancel()
	p, err := fromEnv(ctx, r.svc, keyprovider.WithLookupEnv(r.e.inject))
	if err != nil {
		return r.fail("resolve", err, "")
	}
	defer p.Close()
	src := p.Source()
	r.source = describeSource(src)
	cur, err := p.Fetch(ctx)
	if err != nil {
		return r.fail("resolve", err, "in "+r.e.name+" from "+r.source)
	}
	r.current = cur
	r.log.log(stepEvent{Step: "resolve", Status: statusOK, Message: "current key, in " + r.e.name + " from " + r.source,
		Fingerprint: cur.Fingerprint(), Version: cur.Version()})
	r.src = src
	return nil
}

// validate checks the new key's format and that it is not the current key.
func (r *rotationRun) validate() error {
	next, err := r.svc.ParseKey(r.raw, "")
	if err != nil {
		return r.fail("validate", err, "the new key is not a "+r.svc.Name+" key")
	}
	if next.Equal(r.current) {
		return r.fail("validate", fmt.Errorf("%w (%w)", rotation.ErrSameKey, keyprovider.ErrInvalidKey), "nothing to rotate")
	}
	r.next = next
	r.log.log(stepEvent{Step: "validate", Status: statusOK, Message: "the new key is a " + r.svc.Name + " key, not the current one",
		Fingerprint: next.Fingerprint()})
	return nil
}

// waitServed polls the store as check reads it until it serves now.
func (r *rotationRun) waitServed(ctx context.Context, now keyprovider.Key) error {
	ctx, cancel := context.WithTimeout(ctx, r.c.wait)
	defer cancel()
	for {
		res, err := resolve(ctx, r.svc, r.e)
		if err == nil && res.key.Equal(now) {
			r.log.log(stepEvent{Step: "wait", Status: statusOK, Message: "the store serves the new key",
				Fingerprint: res.key.Fingerprint(), Version: res.key.Version()})
			return nil
		}
		if serr := r.deps.verifier.sleep(ctx, r.deps.poll); serr != nil {
			msg := "the store did not serve the new key within --wait; it is current, readers follow on their next refresh"
			r.log.log(stepEvent{Step: "wait", Status: statusFailed, Kind: "timeout", Message: msg})
			return fmt.Errorf("wait: %s", msg)
		}
	}
}

// revokeHint says how to revoke the old key with the vendor.
func revokeHint(svc keyprovider.Service) string {
	switch svc.Name {
	case keyprovider.Tessera.Name:
		return "once every service runs on the new key, revoke the old one: email support@tesseraai.cloud naming it by this fingerprint (the customer portal will do it self-service)"
	case keyprovider.Tesseral.Name:
		return "once every service runs on the new key, revoke the old Backend API Key in the Tesseral Console (Project > API Keys Settings)"
	default:
		return "once every service runs on the new key, revoke the old one with the vendor"
	}
}
