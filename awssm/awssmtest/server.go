package awssmtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// RequestInfo describes a request the server received.
type RequestInfo struct {
	// Op is the operation, from the X-Amz-Target header: "GetSecretValue".
	Op string
	// SecretID is the request's SecretId (Name for CreateSecret), as sent.
	SecretID string
}

// DelayFunc is called before the server handles a request, with the request's
// context, which is cancelled when the client goes away or the server is
// closed. It simulates latency by blocking; it must return once ctx is done.
// A non-nil error makes the server drop the request without an answer.
//
// To hold a request until the test releases it, without sleeping:
//
//	release := make(chan struct{})
//	srv.SetDelay(func(ctx context.Context, r awssmtest.RequestInfo) error {
//		select {
//		case <-release:
//			return nil
//		case <-ctx.Done():
//			return ctx.Err()
//		}
//	})
type DelayFunc func(ctx context.Context, r RequestInfo) error

// Latency returns a [DelayFunc] that holds every request for d (on a real
// timer), or until its context is done.
func Latency(d time.Duration) DelayFunc {
	return func(ctx context.Context, _ RequestInfo) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// InstantRetryer returns the SDK's standard retryer (same retryable errors,
// same throttling detection) with maxAttempts attempts, no delay between
// them and no retry quota: what a test wants to see retries without waiting.
func InstantRetryer(maxAttempts int) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		o.RateLimiter = ratelimit.None
	})
}

// Match selects the requests a fault applies to. An empty field matches
// every request.
type Match struct {
	// Op is an operation name: "GetSecretValue".
	Op string
	// SecretID is a secret's name or ARN; it matches requests naming the
	// same secret by either.
	SecretID string
}

type fault struct {
	match Match
	fault Fault
	left  int // < 0: until cleared
}

// Server is an AWS Secrets Manager emulator on a local httptest server. It
// speaks the JSON 1.1 protocol the AWS SDKs use and keeps its secrets in
// memory. It is safe for concurrent use.
type Server struct {
	opts   Options
	http   *httptest.Server
	cancel context.CancelFunc
	client *secretsmanager.Client

	mu      sync.Mutex
	store   store
	faults  []*fault
	counts  map[string]int
	delay   DelayFunc
	revoked bool
}

// NewServer starts a server, which tb's cleanup closes. It is [New] for
// tests: an address that cannot be listened on fails tb.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start starts a server; the caller must [Server.Close] it. It panics when
// it cannot listen on [Options.Addr], as [httptest.NewServer] does; use
// [New] to get the error.
func Start(opts ...Option) *Server {
	s, err := New(opts...)
	if err != nil {
		panic(err)
	}
	return s
}

// New starts a server on [Options.Addr]; the caller must [Server.Close] it.
// The error is the listener's (an address in use, say).
func New(opts ...Option) (*Server, error) {
	var o Options
	for _, fn := range opts {
		fn(&o)
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.AccountID == "" {
		o.AccountID = DefaultAccountID
	}
	if o.AccessKeyID == "" {
		o.AccessKeyID = DefaultAccessKeyID
	}
	if o.SecretAccessKey == "" {
		o.SecretAccessKey = DefaultSecretAccessKey
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Retryer == nil {
		o.Retryer = func() aws.Retryer { return InstantRetryer(3) }
	}
	s := &Server{
		opts:   o,
		store:  store{region: o.Region, account: o.AccountID},
		counts: map[string]int{},
		delay:  o.Delay,
	}
	base, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.http = httptest.NewUnstartedServer(s)
	if o.Addr != "" {
		l, err := net.Listen("tcp", o.Addr)
		if err != nil {
			cancel()
			s.http.Close()
			return nil, fmt.Errorf("awssmtest: listen on %s: %w", o.Addr, err)
		}
		_ = s.http.Listener.Close()
		s.http.Listener = l
	}
	s.http.Config.BaseContext = func(net.Listener) context.Context { return base }
	s.http.Start()
	s.client = s.NewClient()
	return s, nil
}

// URL is the server's base URL, "http://127.0.0.1:port": the BaseEndpoint of
// a Secrets Manager client.
func (s *Server) URL() string { return s.http.URL }

// Region is the region the server accepts.
func (s *Server) Region() string { return s.opts.Region }

// Close cancels the requests in progress (releasing any [DelayFunc]) and
// shuts the server down, waiting for its handlers to return.
func (s *Server) Close() {
	s.cancel()
	s.http.Close()
}

// Client returns a Secrets Manager client of the server, made by
// [Server.NewClient] when the server started.
func (s *Server) Client() *secretsmanager.Client { return s.client }

// NewClient returns a new Secrets Manager client that talks to the server:
// its region, its static credentials, BaseEndpoint set to its URL and the
// retryer of [Options.Retryer]; optFns then change those options as they
// would for [secretsmanager.New].
func (s *Server) NewClient(optFns ...func(*secretsmanager.Options)) *secretsmanager.Client {
	return secretsmanager.New(s.ClientOptions(), optFns...)
}

// ClientOptions returns the options [Server.NewClient] starts from, for code
// that builds its own client.
func (s *Server) ClientOptions() secretsmanager.Options {
	akid, secret, session := s.opts.AccessKeyID, s.opts.SecretAccessKey, s.opts.SessionToken
	return secretsmanager.Options{
		Region:       s.opts.Region,
		BaseEndpoint: aws.String(s.http.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: session, Source: "awssmtest"}, nil
		}),
		HTTPClient: s.http.Client(),
		Retryer:    s.opts.Retryer(),
	}
}

// SetDelay replaces the server's [DelayFunc]; nil removes it.
func (s *Server) SetDelay(d DelayFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// FailNext makes the next n requests that m selects fail with f instead of
// being handled; n < 0 makes every such request fail until
// [Server.ClearFaults]. Faults apply after the signature check and the
// [DelayFunc], and are counted like other requests. When several faults
// match a request, the one injected first applies.
func (s *Server) FailNext(m Match, f Fault, n int) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{match: m, fault: f, left: n})
}

// ClearFaults removes every fault injected with [Server.FailNext].
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Count returns how many requests for op ("GetSecretValue") the server has
// received, whether they succeeded or not.
func (s *Server) Count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[op]
}

// Counts returns the number of requests received for each operation.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counts)
}

// ResetCounts sets every request count back to zero.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
}

// takeFault returns the fault that applies to r, consuming one use of it.
// It runs under s.mu.
func (s *Server) takeFault(r RequestInfo, now time.Time) (Fault, bool) {
	for i, f := range s.faults {
		if f.match.Op != "" && f.match.Op != r.Op {
			continue
		}
		if f.match.SecretID != "" && f.match.SecretID != r.SecretID {
			a, b := s.store.lookup(f.match.SecretID, now), s.store.lookup(r.SecretID, now)
			if a == nil || a != b {
				continue
			}
		}
		if f.left > 0 {
			f.left--
			if f.left == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return f.fault, true
	}
	return Fault{}, false
}

// ServeHTTP implements [http.Handler]: one Secrets Manager request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, ControlPath) {
		s.serveControl(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, newError(codeSerialization, "The request body could not be read."))
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "secretsmanager.")
	h := operations[op]
	if r.Method != http.MethodPost || !ok || h == nil {
		writeError(w, newError(codeUnknownOperation, "The operation in X-Amz-Target ("+target+") is not one this emulator supports."))
		return
	}
	info := RequestInfo{Op: op, SecretID: secretIDOf(body)}
	s.mu.Lock()
	s.counts[op]++
	delay := s.delay
	s.mu.Unlock()

	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		writeError(w, newError(codeSerialization, "Content-Type must be application/x-amz-json-1.1, not "+ct+"."))
		return
	}
	if aerr := s.authenticate(r, body); aerr != nil {
		writeError(w, aerr)
		return
	}
	if delay != nil {
		if err := delay(r.Context(), info); err != nil {
			panic(http.ErrAbortHandler)
		}
	}

	s.mu.Lock()
	now := s.opts.Clock()
	f, failed := s.takeFault(info, now)
	var out any
	var aerr *apiError
	if !failed {
		out, aerr = h(s, body, now)
	}
	s.mu.Unlock()

	switch {
	case failed && f.Drop:
		panic(http.ErrAbortHandler)
	case failed && f.Hang:
		<-r.Context().Done() // the client gave up, or Close cancelled it
		panic(http.ErrAbortHandler)
	case failed:
		writeError(w, f.apiError())
	case aerr != nil:
		writeError(w, aerr)
	default:
		writeJSON(w, http.StatusOK, out)
	}
}

// authenticate checks the request's signature, its session token and
// whether the credential was revoked.
func (s *Server) authenticate(r *http.Request, body []byte) *apiError {
	if aerr := verifySigV4(r, body, s.opts.Region, s.secretFor); aerr != nil {
		return aerr
	}
	s.mu.Lock()
	revoked := s.revoked
	s.mu.Unlock()
	// AWS answers a session token that does not go with the access key (a
	// missing one included, and any one at all with a long-term key) as it
	// answers an unknown key.
	if revoked || r.Header.Get("X-Amz-Security-Token") != s.opts.SessionToken {
		return newError(codeUnrecognizedClient, "The security token included in the request is invalid.")
	}
	return nil
}

// Revoke makes the server refuse its own credential (revoked true), as AWS
// refuses a deleted access key or an expired session, or accept it again.
func (s *Server) Revoke(revoked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = revoked
}

func (s *Server) secretFor(akid string) (string, bool) {
	if akid != s.opts.AccessKeyID {
		return "", false
	}
	return s.opts.SecretAccessKey, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		status, buf = http.StatusInternalServerError, *bytes.NewBufferString(`{"__type":"InternalServiceError","Message":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", newRequestID())
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, struct {
		Type    string `json:"__type"`
		Message string `json:"Message"`
	}{e.code, e.message})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newRequestID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newUUID makes a version ID for a request without a ClientRequestToken.
func (s *Server) newUUID() string { return newRequestID() }

// randomSuffix is the six characters Secrets Manager appends to a secret's
// name in its ARN.
func (s *Server) randomSuffix() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
