package standin

import (
	"crypto/sha256"
	"slices"
	"time"
)

// keyState is what the stand-in knows of one key: never the key itself,
// only its SHA-256 (the map key) and its fingerprint.
type keyState struct {
	fp      string
	active  bool      // added, and not revoked
	until   time.Time // if not zero, the key is valid only before it
	denyAll bool
	deny    map[Route]bool
}

func (k *keyState) valid(now time.Time) bool {
	return k.active && (k.until.IsZero() || now.Before(k.until))
}

func (k *keyState) denied(r Route) bool { return k.denyAll || k.deny[r] }

// throttle is the pending run of 429 answers.
type throttle struct {
	left  int
	after time.Duration
}

// state returns the state of key, creating it (inactive) if needed. s.mu
// must be held.
func (s *Server) state(key string) *keyState {
	h := sha256.Sum256([]byte(key))
	st, ok := s.keys[h]
	if !ok {
		st = &keyState{fp: Fingerprint(key)}
		s.keys[h] = st
	}
	return st
}

// lookup returns the state of key, or nil if the stand-in never heard of
// it. s.mu must be held.
func (s *Server) lookup(key string) *keyState { return s.keys[sha256.Sum256([]byte(key))] }

// AddKey makes key valid from the next request on, with no end: the first
// step of a rotation, when the new key is issued and the old one still
// works. Adding a revoked or retiring key makes it valid again. An empty
// key is never accepted, added or not.
func (s *Server) AddKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state(key)
	st.active, st.until = true, time.Time{}
}

// Revoke makes key invalid from the next request on: it is answered 401,
// as a revoked or deleted key is. Revoking an unknown key does nothing.
func (s *Server) Revoke(key string) { s.RevokeAfter(key, 0) }

// RevokeAfter keeps key valid for grace more (by [Options.Clock]), then
// answers it 401. A grace of zero or less revokes it at once. A key already
// due to end sooner keeps its earlier end.
func (s *Server) RevokeAfter(key string, grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.lookup(key); st != nil {
		s.retire(st, grace)
	}
}

// retire ends st after grace. s.mu must be held.
func (s *Server) retire(st *keyState, grace time.Duration) {
	if grace <= 0 {
		st.active = false
		return
	}
	end := s.opts.Clock().Add(grace)
	if st.until.IsZero() || end.Before(st.until) {
		st.until = end
	}
}

// Rotate makes next valid and retires every other valid key after grace
// (by [Options.Clock]): a zero grace refuses them from the next request on,
// the way a key replaced on suspicion of exposure is; a positive grace
// leaves clients time to pick up next, the way a planned rotation does.
// Denials of next ([Server.Deny]) are kept.
func (s *Server) Rotate(next string, grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Clock()
	nextState := s.state(next)
	for _, st := range s.keys {
		if st != nextState && st.valid(now) {
			s.retire(st, grace)
		}
	}
	nextState.active, nextState.until = true, time.Time{}
}

// Deny answers key 403 on routes (every route, if none is given) from the
// next request on, as the APIs answer a valid key whose plan does not cover
// the call. The key must still be valid to get a 403: an invalid key is
// answered 401. Deny may come before the key is added.
func (s *Server) Deny(key string, routes ...Route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state(key)
	if len(routes) == 0 {
		st.denyAll = true
		return
	}
	if st.deny == nil {
		st.deny = make(map[Route]bool)
	}
	for _, r := range routes {
		st.deny[r] = true
	}
}

// Allow lifts every denial of key made with [Server.Deny].
func (s *Server) Allow(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.lookup(key); st != nil {
		st.denyAll, st.deny = false, nil
	}
}

// Throttle answers the next n requests that would be served 429, with a
// Retry-After header of retryAfter rounded up to whole seconds (zero or less
// sends "Retry-After: 0"). It replaces a throttle still pending; n of zero
// or less ends it.
func (s *Server) Throttle(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = throttle{left: max(n, 0), after: max(retryAfter, 0)}
}

// ValidKeys returns the fingerprints of the keys valid now, sorted.
func (s *Server) ValidKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Clock()
	var fps []string
	for _, st := range s.keys {
		if st.valid(now) {
			fps = append(fps, st.fp)
		}
	}
	slices.Sort(fps)
	return fps
}
