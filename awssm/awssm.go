// Package awssm reads API keys from AWS Secrets Manager.
//
// # Usage
//
// [New] takes a Secrets Manager client (anything with GetSecretValue, such as
// *secretsmanager.Client) and a secret ID, a name or a full ARN:
//
//	p, err := awssm.New(client, "prod/tessera/api-key", awssm.WithService(keyprovider.Tessera))
//
// [FromEnv] builds the client itself from the default AWS configuration
// chain (environment, shared config and credentials files, SSO, web
// identity, ECS and EC2 instance roles):
//
//	p, err := awssm.FromEnv(ctx, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/tessera-AbCdEf",
//		awssm.WithJSONField("api_key"))
//	...
//	defer p.Close()
//
// With [WithLookupEnv], FromEnv reads that environment only, never the
// process's: see [FromEnv] for what it then takes from it.
//
// # Which value is the key
//
// By default the key is the SecretString of the version labelled AWSCURRENT,
// trimmed. [WithJSONField] reads it from a field of a SecretString holding a
// JSON object, the shape the console's key/value editor writes. A secret
// stored as SecretBinary is read the same way. [WithVersionStage] or
// [WithVersionID] select another version; a Provider never returns
// AWSPENDING unless asked for it. [keyprovider.Key.Version] is the AWS
// VersionId.
//
// # Rotation
//
// Each Fetch reads the secret again, so once a rotation moves AWSCURRENT to
// a new version (UpdateSecretVersionStage, or PutSecretValue without
// VersionStages) the next Fetch returns the new key. Wrap the Provider with
// package rotate to refresh in the background.
//
// # Errors
//
// Errors are [*keyprovider.Error] values of provider "awssm", classified by
// the AWS error code: ResourceNotFoundException (and a secret scheduled for
// deletion) is [keyprovider.ErrNotFound]; AccessDeniedException,
// DecryptionFailure (KMS) and credential failures are
// [keyprovider.ErrPermission]; throttling, 5xx answers, timeouts and
// connection failures, once the SDK's retryer has given up, are
// [keyprovider.ErrUnavailable]; a value that is not a usable key is
// [keyprovider.ErrInvalidKey]. Every error is scrubbed, in one place, of
// the credentials the client signs with (the secret access key and the
// session token, for a *secretsmanager.Client) and of any text shaped like
// a key, so that a server or a
// proxy echoing them puts neither in a log. The SDK's error stays reachable with
// [errors.As] (*types.ResourceNotFoundException, [smithy.APIError], ...),
// and a cancelled or expired context stays matchable with [errors.Is].
//
// # Testing
//
// Package awssmtest is an emulator of Secrets Manager that a real SDK client
// talks to over HTTP; use it to test code built on this package.
package awssm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/keyprovider/keyprovider"
)

// providerName is the Provider field of this package's [*keyprovider.Error]s.
const providerName = "awssm"

// StageCurrent is the staging label of the version a secret's readers get by
// default.
const StageCurrent = "AWSCURRENT"

// API is the part of the Secrets Manager client a [Provider] uses.
// *secretsmanager.Client satisfies it.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var _ API = (*secretsmanager.Client)(nil)

// Options configure a [Provider]. Set them with the With helpers.
type Options struct {
	// VersionStage is the staging label of the version to read. Zero means
	// "AWSCURRENT" (unless VersionID is set). Setting both VersionStage and
	// VersionID is a configuration error.
	VersionStage string
	// VersionID pins one version of the secret. Zero means: follow
	// VersionStage.
	VersionID string
	// JSONField, if set, names the field of a JSON object secret that holds
	// the key: with JSONField "api_key", the secret {"api_key": "sk-..."}
	// yields "sk-...". Zero means the whole secret value is the key.
	JSONField string
	// Service is the service the key is for; keys are checked with its
	// [keyprovider.Service.ParseKey]. The zero Service checks only that the
	// key is safe in an HTTP header.
	Service keyprovider.Service

	// The fields below are used by [FromEnv] only.

	// Region is the AWS region. Zero means the region of the secret's ARN
	// if the secret ID is an ARN, else the region of the environment
	// (AWS_REGION, AWS_DEFAULT_REGION, the shared config file...).
	Region string
	// Endpoint replaces the Secrets Manager endpoint URL (a VPC endpoint, an
	// emulator). Zero means the endpoint the environment names
	// (AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL), else AWS's.
	Endpoint string
	// LookupEnv, if set, is the whole environment FromEnv configures the
	// client from: the process environment is not read at all, nor the
	// shared files in the home directory (see [FromEnv]). Zero means the
	// SDK's default configuration chain, which reads the process
	// environment itself.
	LookupEnv func(name string) (value string, ok bool)
	// LoadOptions are passed to [config.LoadDefaultConfig], after those
	// made from the fields above. Nil means none. They need the default
	// chain: setting both LoadOptions and LookupEnv is a configuration
	// error.
	LoadOptions []func(*config.LoadOptions) error
	// ClientOptions are passed to [secretsmanager.NewFromConfig], after
	// the endpoint is set. Nil means none.
	ClientOptions []func(*secretsmanager.Options)
}

// Option changes [Options].
type Option func(*Options)

// WithVersionStage sets [Options.VersionStage].
func WithVersionStage(stage string) Option { return func(o *Options) { o.VersionStage = stage } }

// WithVersionID sets [Options.VersionID].
func WithVersionID(id string) Option { return func(o *Options) { o.VersionID = id } }

// WithJSONField sets [Options.JSONField].
func WithJSONField(field string) Option { return func(o *Options) { o.JSONField = field } }

// WithService sets [Options.Service].
func WithService(s keyprovider.Service) Option { return func(o *Options) { o.Service = s } }

// WithRegion sets [Options.Region].
func WithRegion(region string) Option { return func(o *Options) { o.Region = region } }

// WithEndpoint sets [Options.Endpoint].
func WithEndpoint(url string) Option { return func(o *Options) { o.Endpoint = url } }

// WithLookupEnv sets [Options.LookupEnv].
func WithLookupEnv(lookup func(name string) (value string, ok bool)) Option {
	return func(o *Options) { o.LookupEnv = lookup }
}

// WithLoadOptions appends to [Options.LoadOptions].
func WithLoadOptions(load ...func(*config.LoadOptions) error) Option {
	return func(o *Options) { o.LoadOptions = append(o.LoadOptions, load...) }
}

// WithClientOptions appends to [Options.ClientOptions].
func WithClientOptions(fns ...func(*secretsmanager.Options)) Option {
	return func(o *Options) { o.ClientOptions = append(o.ClientOptions, fns...) }
}

func options(opts []Option) Options {
	var o Options
	for _, fn := range opts {
		fn(&o)
	}
	return o
}

// Provider reads a key from one secret of AWS Secrets Manager. It is safe for
// concurrent use.
type Provider struct {
	client   API
	secretID string
	opts     Options
	// res is behind a pointer, and holds only pointers set before the
	// Provider is shared, so that printing a Provider by reflection (fmt
	// on a struct holding one) reads nothing another goroutine writes.
	res *resources
}

// resources are what a Provider records and owns.
type resources struct {
	// creds are the credentials of the client, recorded as the SDK
	// retrieves them, so that errors are scrubbed of them; nil for a
	// client that is not a *secretsmanager.Client.
	creds *recordingCreds
	// owned is the HTTP transport of a client FromEnv built, whose idle
	// connections Close closes; nil for a client given to New.
	owned  *http.Transport
	closed *atomic.Bool
}

var _ keyprovider.Provider = (*Provider)(nil)

// errConfig is the cause of a configuration error.
var errConfig = errors.New("invalid configuration")

// errClosed is the cause of a Fetch after Close.
var errClosed = errors.New("the Provider is closed")

// New returns a Provider reading secretID (a name or an ARN) through client,
// which the caller owns: [Provider.Close] leaves it alone. It does not
// contact AWS. When client is a *secretsmanager.Client, the Provider reads
// through a copy of it ([secretsmanager.New] with client.Options()) whose
// credentials provider records the secret access key and session token it
// hands out, so that errors are scrubbed of them; any other client's
// credentials are unknown to the Provider, and its errors are scrubbed of
// key-shaped text only. It fails, with an error wrapping [keyprovider.ErrInvalidKey],
// if client is nil, secretID is empty or not a Secrets Manager ARN (a
// malformed region included), or both a stage and a version ID are given.
func New(client API, secretID string, opts ...Option) (*Provider, error) {
	if client == nil {
		return nil, configError(secretID, "nil client")
	}
	o := options(opts)
	if err := checkSecretID(secretID, o); err != nil {
		return nil, err
	}
	if o.VersionStage == "" && o.VersionID == "" {
		o.VersionStage = StageCurrent
	}
	p := &Provider{client: client, secretID: secretID, opts: o, res: &resources{closed: new(atomic.Bool)}}
	if c, ok := client.(*secretsmanager.Client); ok && c != nil {
		if so := c.Options(); so.Credentials != nil {
			rec := &recordingCreds{inner: so.Credentials}
			p.res.creds = rec
			p.client = secretsmanager.New(so, func(so *secretsmanager.Options) { so.Credentials = rec })
		}
	}
	return p, nil
}

// checkSecretID checks what New and FromEnv check before anything is made.
func checkSecretID(secretID string, o Options) error {
	switch {
	case strings.TrimSpace(secretID) == "":
		return configError(secretID, "empty secret ID")
	case o.VersionStage != "" && o.VersionID != "":
		return configError(secretID, "both a version stage (%s) and a version ID (%s) are set; choose one", o.VersionStage, o.VersionID)
	}
	if strings.HasPrefix(secretID, "arn:") {
		if _, err := arnRegion(secretID); err != nil {
			return configError(secretID, "%v", err)
		}
	}
	return nil
}

// regionPattern is what an AWS region looks like ("eu-west-1",
// "us-gov-east-1"), loosely enough for emulators' own names: lower-case
// letters and digits in dash-separated words, starting with a letter. It
// keeps a region, which becomes part of a host name and of the signature,
// from carrying a "/", an "@" or a ":".
var regionPattern = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// errBadRegion is what checkRegion reports; it does not quote the region,
// which may be pasted text.
var errBadRegion = errors.New("region must be an AWS region name such as eu-west-1")

// checkRegion reports a region that cannot be one. The reference grammar
// (scheme.go), New and FromEnv all use it.
func checkRegion(region string) error {
	if len(region) > 32 || !regionPattern.MatchString(region) {
		return errBadRegion
	}
	return nil
}

// arnRegion returns the region of a Secrets Manager secret ARN,
// "arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME", checking every
// part that can be checked offline. The reference grammar (scheme.go) and
// New both use it, so an ARN is judged alike wherever it is given.
func arnRegion(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 7)
	if len(parts) != 7 || parts[1] == "" || parts[2] != "secretsmanager" || parts[5] != "secret" || parts[6] == "" {
		return "", errors.New("not a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)")
	}
	if checkRegion(parts[3]) != nil {
		return "", errors.New("the ARN's region is not an AWS region name such as eu-west-1")
	}
	if parts[4] == "" || strings.ContainsFunc(parts[4], func(c rune) bool { return c < '0' || c > '9' }) {
		return "", errors.New("the ARN's account is not an AWS account ID (digits)")
	}
	for _, c := range parts[1] {
		if !(c >= 'a' && c <= 'z' || c == '-') {
			return "", errors.New("the ARN's partition is not an AWS partition such as aws")
		}
	}
	return parts[3], nil
}

// Close releases what the Provider made itself: the idle connections of
// the client [FromEnv] built. A client given to [New] belongs to the caller
// and is left alone. A Provider starts no goroutines, so Close has nothing
// to wait for. Fetch after Close fails with [keyprovider.ErrUnavailable];
// a second Close does nothing and returns nil.
func (p *Provider) Close() error {
	if p.res == nil || p.res.closed.Swap(true) {
		return nil
	}
	if p.res.owned != nil {
		p.res.owned.CloseIdleConnections()
	}
	return nil
}

// SecretID returns the name or ARN the Provider reads.
func (p *Provider) SecretID() string { return p.secretID }

// Fetch reads the secret once and returns the key it holds. See the package
// documentation for the errors it returns.
func (p *Provider) Fetch(ctx context.Context) (keyprovider.Key, error) {
	if err := ctx.Err(); err != nil {
		return keyprovider.Key{}, p.fail(nil, err)
	}
	if p.res.closed.Load() {
		return keyprovider.Key{}, p.fail(keyprovider.ErrUnavailable, errClosed)
	}
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(p.secretID)}
	if p.opts.VersionID != "" {
		in.VersionId = aws.String(p.opts.VersionID)
	} else {
		in.VersionStage = aws.String(p.opts.VersionStage)
	}
	out, err := p.client.GetSecretValue(ctx, in)
	if err != nil {
		return keyprovider.Key{}, p.classify(ctx, err)
	}
	version := aws.ToString(out.VersionId)
	raw, err := p.value(out)
	if err != nil {
		return keyprovider.Key{}, err
	}
	k, err := p.opts.Service.ParseKey(raw, version)
	if err != nil {
		return keyprovider.Key{}, p.fail(keyprovider.ErrInvalidKey, fmt.Errorf("version %s: %w", version, err))
	}
	return k, nil
}

// Errors about the secret's value. None of them quotes the value.
var (
	errNoValue     = errors.New("the secret version holds neither SecretString nor SecretBinary")
	errNotJSON     = errors.New("the secret value is not a JSON object")
	errNoField     = errors.New("the secret's JSON object has no such field")
	errNotString   = errors.New("the secret's JSON field is not a string")
	errJSONWithout = errors.New("the secret value is a JSON object; name the field holding the key with WithJSONField")
)

// value extracts the raw key from the secret version, applying JSONField.
func (p *Provider) value(out *secretsmanager.GetSecretValueOutput) (string, error) {
	_, key, err := p.decode(out)
	return key, err
}

// decode is value, also returning, with JSONField, the object the key is a
// field of.
func (p *Provider) decode(out *secretsmanager.GetSecretValueOutput) (map[string]json.RawMessage, string, error) {
	version := aws.ToString(out.VersionId)
	var raw string
	switch {
	case out.SecretString != nil:
		raw = *out.SecretString
	case out.SecretBinary != nil:
		raw = string(out.SecretBinary)
	default:
		return nil, "", p.fail(keyprovider.ErrNotFound, fmt.Errorf("version %s: %w", version, errNoValue))
	}
	if p.opts.JSONField == "" {
		if looksLikeJSONObject(raw) {
			return nil, "", p.fail(keyprovider.ErrInvalidKey, fmt.Errorf("version %s: %w", version, errJSONWithout))
		}
		return nil, raw, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &obj); err != nil || obj == nil {
		// The decoder's message can quote the value: never include it.
		return nil, "", p.fail(keyprovider.ErrInvalidKey, fmt.Errorf("version %s: %w (looking for field %q)", version, errNotJSON, p.opts.JSONField))
	}
	field, ok := obj[p.opts.JSONField]
	if !ok {
		return nil, "", p.fail(keyprovider.ErrNotFound, fmt.Errorf("version %s: %w: %q (the object has %d field(s))", version, errNoField, p.opts.JSONField, len(obj)))
	}
	var s string
	if err := json.Unmarshal(field, &s); err != nil {
		return nil, "", p.fail(keyprovider.ErrInvalidKey, fmt.Errorf("version %s: %w: %q is %s", version, errNotString, p.opts.JSONField, jsonKind(field)))
	}
	return obj, s, nil
}

func looksLikeJSONObject(s string) bool {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") {
		return false
	}
	var obj map[string]json.RawMessage
	return json.Unmarshal([]byte(s), &obj) == nil
}

// jsonKind names the type of a JSON value, without its content.
func jsonKind(v json.RawMessage) string {
	s := strings.TrimSpace(string(v))
	switch {
	case s == "null":
		return "null"
	case s == "true" || s == "false":
		return "a boolean"
	case strings.HasPrefix(s, "{"):
		return "an object"
	case strings.HasPrefix(s, "["):
		return "an array"
	default:
		return "a number"
	}
}
