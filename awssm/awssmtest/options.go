package awssmtest

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Defaults of [Options].
const (
	DefaultRegion          = "us-east-1"
	DefaultAccountID       = "123456789012"
	DefaultAccessKeyID     = "AKIAAWSSMTESTEXAMPLE"
	DefaultSecretAccessKey = "awssmtest/secret/access/key/EXAMPLEKEY"
)

// Options configure a [Server]. The zero value is ready to use.
type Options struct {
	// Region is the only region the server accepts in a request's SigV4
	// credential scope, and the region of the ARNs it makes. Zero means
	// [DefaultRegion].
	Region string
	// AccountID goes in the ARNs. Zero means [DefaultAccountID].
	AccountID string
	// AccessKeyID is the access key ID of the one credential the server
	// accepts (it verifies each request's signature with it and
	// SecretAccessKey) and the one its clients sign with; a request signed
	// with another is UnrecognizedClientException. Zero means
	// [DefaultAccessKeyID].
	AccessKeyID string
	// SecretAccessKey is the secret of that credential. Zero means
	// [DefaultSecretAccessKey].
	SecretAccessKey string
	// Clock is the server's clock, for the dates it reports and for the end
	// of a secret's recovery window after DeleteSecret. Nil means
	// [time.Now]. Signatures are not checked for clock skew.
	Clock func() time.Time
	// Delay, if not nil, is called for each authenticated request before it
	// is handled, to simulate latency; see [DelayFunc]. It can be changed
	// later with [Server.SetDelay].
	Delay DelayFunc
	// Retryer makes the retryer of the clients from [Server.Client] and
	// [Server.NewClient]. Nil means [InstantRetryer](3): the SDK's standard
	// retry policy with three attempts, without backoff delays or a retry
	// quota, so that tests of retries never sleep.
	Retryer func() aws.Retryer
	// SessionToken, if set, makes the server's credential a temporary one:
	// every request must carry it as X-Amz-Security-Token, and one that
	// carries another or none is refused with UnrecognizedClientException,
	// as AWS refuses a session token that does not belong to the access
	// key. Zero means the credential is a long-term key, with which AWS
	// refuses any session token the same way; keyprov emulate always sets
	// one.
	SessionToken string
	// Addr is the address to listen on ("127.0.0.1:4566"). Zero means a
	// free port on 127.0.0.1.
	Addr string
}

// Option changes [Options].
type Option func(*Options)

// WithRegion sets [Options.Region].
func WithRegion(region string) Option { return func(o *Options) { o.Region = region } }

// WithAccountID sets [Options.AccountID].
func WithAccountID(id string) Option { return func(o *Options) { o.AccountID = id } }

// WithAccessKeyID sets [Options.AccessKeyID].
func WithAccessKeyID(id string) Option { return func(o *Options) { o.AccessKeyID = id } }

// WithSecretAccessKey sets [Options.SecretAccessKey].
func WithSecretAccessKey(secret string) Option {
	return func(o *Options) { o.SecretAccessKey = secret }
}

// WithClock sets [Options.Clock].
func WithClock(now func() time.Time) Option { return func(o *Options) { o.Clock = now } }

// WithDelay sets [Options.Delay].
func WithDelay(d DelayFunc) Option { return func(o *Options) { o.Delay = d } }

// WithRetryer sets [Options.Retryer].
func WithRetryer(r func() aws.Retryer) Option { return func(o *Options) { o.Retryer = r } }

// WithSessionToken sets [Options.SessionToken].
func WithSessionToken(token string) Option { return func(o *Options) { o.SessionToken = token } }

// WithAddr sets [Options.Addr].
func WithAddr(addr string) Option { return func(o *Options) { o.Addr = addr } }
