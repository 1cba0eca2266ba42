package awssm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
)

// codeKinds classifies the error codes AWS answers GetSecretValue with.
// Codes not listed fall back on the HTTP status (see kindOfStatus).
var codeKinds = map[string]error{
	// The secret, or the version asked for, does not exist.
	"ResourceNotFoundException": keyprovider.ErrNotFound,
	// For GetSecretValue the one cause AWS documents is a secret scheduled
	// for deletion. To its readers it is gone (AWS purges it when the
	// recovery window ends unless someone runs RestoreSecret), so it is
	// reported as not found, with a hint in the message.
	"InvalidRequestException": keyprovider.ErrNotFound,

	// IAM denied the read, or the caller may not use the secret's KMS key.
	"AccessDeniedException": keyprovider.ErrPermission,
	"DecryptionFailure":     keyprovider.ErrPermission,
	// The credentials are unknown, expired or sign wrongly.
	"UnrecognizedClientException":         keyprovider.ErrPermission,
	"InvalidClientTokenId":                keyprovider.ErrPermission,
	"ExpiredToken":                        keyprovider.ErrPermission,
	"ExpiredTokenException":               keyprovider.ErrPermission,
	"InvalidSignatureException":           keyprovider.ErrPermission,
	"SignatureDoesNotMatch":               keyprovider.ErrPermission,
	"IncompleteSignature":                 keyprovider.ErrPermission,
	"IncompleteSignatureException":        keyprovider.ErrPermission,
	"MissingAuthenticationToken":          keyprovider.ErrPermission,
	"MissingAuthenticationTokenException": keyprovider.ErrPermission,

	// The request names the secret in a way AWS rejects (a malformed ARN,
	// a VersionId of the wrong length): a configuration error.
	"InvalidParameterException": keyprovider.ErrInvalidKey,
	"ValidationException":       keyprovider.ErrInvalidKey,

	// Transient: retrying later may succeed.
	"ThrottlingException":      keyprovider.ErrUnavailable,
	"Throttling":               keyprovider.ErrUnavailable,
	"TooManyRequestsException": keyprovider.ErrUnavailable,
	"RequestLimitExceeded":     keyprovider.ErrUnavailable,
	"InternalServiceError":     keyprovider.ErrUnavailable,
	"InternalFailure":          keyprovider.ErrUnavailable,
	"ServiceUnavailable":       keyprovider.ErrUnavailable,
	"RequestTimeout":           keyprovider.ErrUnavailable,
	"RequestTimeoutException":  keyprovider.ErrUnavailable,
}

// codeHints add a word of explanation to the error of some codes.
var codeHints = map[string]string{
	"InvalidRequestException": "the secret is scheduled for deletion (RestoreSecret cancels that)",
	"DecryptionFailure":       "the caller may not decrypt with the secret's KMS key",
}

// kindOfStatus classifies an error answer whose code codeKinds does not
// know, by its HTTP status.
func kindOfStatus(status int) error {
	switch {
	case status == http.StatusNotFound:
		return keyprovider.ErrNotFound
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return keyprovider.ErrPermission
	default: // 5xx, 429, and answers we cannot make sense of
		return keyprovider.ErrUnavailable
	}
}

// classify turns an error of GetSecretValue into a *keyprovider.Error. The
// SDK's error is kept as the cause, for errors.As.
func (p *Provider) classify(ctx context.Context, err error) error {
	// The caller's context ended: that, not the backend, is the failure.
	if ctxErr := ctx.Err(); ctxErr != nil {
		if !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		return p.fail(nil, err)
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		kind, ok := codeKinds[code]
		if !ok {
			status := 0
			var respErr *smithyhttp.ResponseError
			if errors.As(err, &respErr) {
				status = respErr.HTTPStatusCode()
			}
			kind = kindOfStatus(status)
		}
		if hint, ok := codeHints[code]; ok {
			err = fmt.Errorf("%s: %w", hint, err)
		}
		return p.fail(kind, err)
	}
	if isCredentialError(err) {
		return p.fail(keyprovider.ErrPermission, fmt.Errorf("no usable AWS credentials: %w", err))
	}
	// Connection failures, timeouts, unreadable answers.
	return p.fail(keyprovider.ErrUnavailable, err)
}

// newError is the one way this package's errors are made: every one goes
// through it, and it scrubs err's text of secrets (the credentials the
// client signs with, when FromEnv built it) and of any key-shaped text,
// since the SDK's errors quote what the server answered and a shared
// config file's parse errors what the file holds. kind nil means the
// caller's context ended.
func newError(secretID string, kind, err error, secrets ...string) error {
	return &keyprovider.Error{Provider: providerName, Ref: secretID, Kind: kind, Err: redact.Error(err, secrets...)}
}

// fail returns the error of a Fetch, scrubbed of the Provider's credentials.
func (p *Provider) fail(kind, err error) error {
	return newError(p.secretID, kind, err, p.res.creds.secrets()...)
}

// configError returns a configuration error of secretID.
func configError(secretID, format string, args ...any) error {
	return newError(secretID, keyprovider.ErrInvalidKey, fmt.Errorf("%w: "+format, append([]any{errConfig}, args...)...))
}

// isCredentialError reports whether err is the SDK failing to get
// credentials to sign with. The SDK has no type for it; its client wraps the
// credential provider's error as "get identity: ...", and the v4 signing
// middleware as "failed to retrieve credentials: ...".
func isCredentialError(err error) bool {
	var opErr *smithy.OperationError
	if !errors.As(err, &opErr) || opErr.Err == nil {
		return false
	}
	msg := opErr.Err.Error()
	return strings.HasPrefix(msg, "get identity: ") || strings.Contains(msg, "failed to retrieve credentials")
}
