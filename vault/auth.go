package vault

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/api"
)

// maxOldTokens bounds how many former login tokens are kept for scrubbing.
const maxOldTokens = 4

// login logs the client in with Options.Auth, before the first read or, with
// again set, after a 403.
func (p *Provider) login(ctx context.Context, again bool) error {
	if p.o.Auth == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loggedIn && !again {
		return nil
	}
	if tok := p.c.Token(); tok != "" {
		p.tokens = append(p.tokens, tok)
		if len(p.tokens) > maxOldTokens {
			p.tokens = p.tokens[len(p.tokens)-maxOldTokens:]
		}
	}
	secret, err := p.c.Auth().Login(ctx, p.o.Auth)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	p.loggedIn = true
	p.renewLocked(secret)
	return nil
}

// secrets are the tokens the provider holds, or held, for failure to scrub.
func (p *Provider) secrets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string{p.c.Token()}, p.tokens...)
}

// renewLocked keeps a renewable login token alive with Vault's
// LifetimeWatcher, on a goroutine the Provider owns (Close stops it and
// waits). When the token can be renewed no more (its max TTL), the next
// Fetch logs in again. p.mu is held.
func (p *Provider) renewLocked(secret *api.Secret) {
	if p.watcher != nil {
		p.watcher.Stop()
		p.watcher = nil
	}
	if p.closed || secret == nil || secret.Auth == nil || !secret.Auth.Renewable {
		return
	}
	w, err := p.c.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		return // not renewable after all: the next 403 logs in again
	}
	p.watcher = w
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		w.Start() // returns when the token is past renewal, or on Stop
		<-w.DoneCh()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.watcher == w {
			p.watcher = nil
			p.loggedIn = false
		}
	}()
}

func (p *Provider) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Close stops renewing the login token, if one is being renewed, and waits
// for the goroutine that does it (a renewal request under way runs to its
// end, bounded by the client's timeout). A Provider from [FromEnv] also
// closes its client's idle connections; a client given to [New] is the
// caller's and stays open. Close is idempotent and returns nil; Fetch after
// Close fails with an error wrapping keyprovider.ErrUnavailable.
func (p *Provider) Close() error {
	p.mu.Lock()
	p.closed = true
	w := p.watcher
	p.watcher = nil
	p.mu.Unlock()
	if w != nil {
		w.Stop()
	}
	p.wg.Wait()
	if p.owned != nil {
		p.owned.CloseIdleConnections()
	}
	return nil
}
