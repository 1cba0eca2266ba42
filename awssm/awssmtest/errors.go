package awssmtest

import "net/http"

// Error codes the emulator answers with, as AWS spells them.
const (
	codeResourceNotFound    = "ResourceNotFoundException"
	codeResourceExists      = "ResourceExistsException"
	codeInvalidParameter    = "InvalidParameterException"
	codeInvalidRequest      = "InvalidRequestException"
	codeLimitExceeded       = "LimitExceededException"
	codeAccessDenied        = "AccessDeniedException"
	codeDecryptionFailure   = "DecryptionFailure"
	codeThrottling          = "ThrottlingException"
	codeInternal            = "InternalServiceError"
	codeServiceUnavailable  = "ServiceUnavailable"
	codeUnrecognizedClient  = "UnrecognizedClientException"
	codeInvalidSignature    = "InvalidSignatureException"
	codeIncompleteSignature = "IncompleteSignatureException"
	codeMissingAuth         = "MissingAuthenticationTokenException"
	codeSerialization       = "SerializationException"
	codeUnknownOperation    = "UnknownOperationException"
)

// statusFor is the HTTP status AWS sends with each error code. Secrets
// Manager, like the other AWS JSON services, answers client errors
// (throttling and access denied included) with 400.
var statusFor = map[string]int{
	codeInternal:           http.StatusInternalServerError,
	codeServiceUnavailable: http.StatusServiceUnavailable,
	codeMissingAuth:        http.StatusForbidden,
}

func statusOf(code string) int {
	if s, ok := statusFor[code]; ok {
		return s
	}
	return http.StatusBadRequest
}

// apiError is an AWS-shaped error answer.
type apiError struct {
	status  int
	code    string
	message string
}

func newError(code, message string) *apiError {
	return &apiError{status: statusOf(code), code: code, message: message}
}

func errMissingAuth() *apiError {
	return newError(codeMissingAuth, "Missing Authentication Token")
}

func errNotFound() *apiError {
	return newError(codeResourceNotFound, "Secrets Manager can't find the specified secret.")
}

func errMarkedForDeletion() *apiError {
	return newError(codeInvalidRequest, "You can't perform this operation on the secret because it was marked for deletion.")
}

func errParam(message string) *apiError { return newError(codeInvalidParameter, message) }

// Fault is an answer the emulator gives instead of handling a request: an
// AWS error, or a dropped connection. Inject faults with [Server.FailNext].
type Fault struct {
	// Code is the AWS error code, sent as the "__type" of the error body
	// ("ThrottlingException"). The SDK turns the codes Secrets Manager
	// models into its typed errors (*types.DecryptionFailure, ...) and the
	// others into a *smithy.GenericAPIError.
	Code string
	// Message is the error's "Message".
	Message string
	// Status is the HTTP status. Zero means the status AWS sends with Code:
	// 500 for InternalServiceError, 503 for ServiceUnavailable, 400 for the
	// rest.
	Status int
	// Drop, if true, closes the connection without any answer, which the
	// client sees as a connection error; the other fields are then ignored.
	Drop bool
	// Hang, if true, holds the request unanswered until the client gives
	// up or the server is closed; the other fields are then ignored.
	Hang bool
}

// The faults tests need most, with the codes and messages AWS sends.
var (
	// Throttling is AWS's answer to too many requests; the SDK's standard
	// retryer retries it.
	Throttling = Fault{Code: codeThrottling, Message: "Rate exceeded"}
	// InternalServiceError is a 500 from Secrets Manager; retried by the SDK.
	InternalServiceError = Fault{Code: codeInternal, Message: "An error occurred on the server side."}
	// ServiceUnavailable is a 503; retried by the SDK.
	ServiceUnavailable = Fault{Code: codeServiceUnavailable, Message: "Service Unavailable"}
	// AccessDenied is IAM refusing the caller the operation.
	AccessDenied = Fault{Code: codeAccessDenied, Message: "User: arn:aws:iam::123456789012:user/test is not authorized to perform this operation because no identity-based policy allows it"}
	// DecryptionFailure is Secrets Manager unable to decrypt the secret with
	// its KMS key, typically because the caller may not use the key.
	DecryptionFailure = Fault{Code: codeDecryptionFailure, Message: "Secrets Manager can't decrypt the protected secret text using the provided KMS key."}
	// DropConnection closes the connection without answering.
	DropConnection = Fault{Drop: true}
	// Hang holds the request until the client gives up.
	Hang = Fault{Hang: true}
)

func (f Fault) apiError() *apiError {
	e := newError(f.Code, f.Message)
	if f.Status != 0 {
		e.status = f.Status
	}
	return e
}
