package standin

import "maps"

// Stats tells what a [Server] has seen. Keys appear only as fingerprints
// (see [Fingerprint]), so a Stats is safe to print in a failure message.
type Stats struct {
	// Requests counts every request to one of the stand-in's routes
	// (requests to other paths are not counted anywhere).
	Requests int
	// Accepted counts requests that carried a valid key, whatever was
	// answered after that (403, 429, 400 and 404 included).
	Accepted int
	// Rejected counts requests answered 401: no Authorization header, a
	// malformed one, or a key that is unknown, revoked or past its grace.
	Rejected int
	// Denied counts requests answered 403 ([Server.Deny]).
	Denied int
	// Throttled counts requests answered 429 ([Server.Throttle]).
	Throttled int
	// ByRoute counts requests per route.
	ByRoute map[Route]int
	// ByStatus counts answers per HTTP status code.
	ByStatus map[int]int
	// ByKey counts requests per fingerprint of the bearer token they
	// carried, valid or not; requests without a token are not in it.
	ByKey map[string]int
	// LastAccepted is the fingerprint of the key of the last accepted
	// request, or "" if none was accepted yet.
	LastAccepted string
}

func newStats() Stats {
	return Stats{ByRoute: map[Route]int{}, ByStatus: map[int]int{}, ByKey: map[string]int{}}
}

// Stats returns a copy of what the stand-in has seen so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByRoute = maps.Clone(st.ByRoute)
	st.ByStatus = maps.Clone(st.ByStatus)
	st.ByKey = maps.Clone(st.ByKey)
	return st
}

// ResetStats sets every count back to zero, keeping keys, denials and a
// pending throttle.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = newStats()
}
