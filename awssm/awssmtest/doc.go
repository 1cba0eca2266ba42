// Package awssmtest is an AWS Secrets Manager emulator for tests: an
// [net/http/httptest] server that speaks the JSON 1.1 protocol the AWS SDKs
// use, so that code under test drives a real *secretsmanager.Client over
// HTTP, with its real serialisation, signing, retries and typed errors.
//
// # What it emulates
//
// The operations CreateSecret, GetSecretValue, BatchGetSecretValue,
// PutSecretValue, UpdateSecret, UpdateSecretVersionStage, DescribeSecret,
// ListSecrets, ListSecretVersionIds, DeleteSecret and RestoreSecret, with the
// semantics AWS documents, as the AWS CLI and boto3 see them (the tests drive
// every operation through both and check each answer against botocore's
// service model):
//
//   - Requests are POST / with "X-Amz-Target: secretsmanager.<Op>" and
//     "Content-Type: application/x-amz-json-1.1"; errors are AWS-shaped
//     bodies {"__type": "...", "Message": "..."} with AWS's status codes, so
//     the SDK returns *types.ResourceNotFoundException and friends.
//   - Every request must carry a SigV4 Authorization header scoped to the
//     server's region and the secretsmanager service, signed with the
//     server's credential; the server recomputes the signature.
//   - Secrets are found by name, full ARN or partial ARN; ARNs end in six
//     random characters, as AWS's do.
//   - Staging labels: a new version from CreateSecret, UpdateSecret or
//     PutSecretValue without VersionStages becomes AWSCURRENT;
//     PutSecretValue with VersionStages [AWSPENDING] leaves AWSCURRENT where
//     it is, except on a secret's first version, which always gets
//     AWSCURRENT. Moving
//     AWSCURRENT (PutSecretValue or UpdateSecretVersionStage) moves
//     AWSPREVIOUS onto the version that held it. UpdateSecretVersionStage
//     requires RemoveFromVersionId when the label is attached elsewhere and
//     refuses to remove AWSCURRENT outright. Versions left without labels
//     are deprecated: listed only with IncludeDeprecated, still readable
//     by VersionId, and the oldest are removed past 100 versions, but never
//     one younger than 24 hours: a new version that would need that is
//     refused with LimitExceededException.
//   - A request whose session token is not the credential's is
//     UnrecognizedClientException: with [Options.SessionToken] set, another
//     token or none; without it (a long-term key), any token at all.
//   - CreateSecret keeps its Tags (DescribeSecret and ListSecrets return
//     them, ListSecrets filters on them) or refuses them as AWS does.
//   - ListSecrets and BatchGetSecretValue filter (name, description,
//     tag-key, tag-value, all; "!" negates), sort and paginate.
//   - ClientRequestToken is the VersionId and makes CreateSecret and
//     PutSecretValue idempotent; reusing it with another value fails with
//     ResourceExistsException.
//   - DeleteSecret schedules deletion after a 7 to 30 day recovery window
//     (the secret then answers InvalidRequestException to reads and
//     writes, and DescribeSecret shows its DeletedDate) or, with
//     ForceDeleteWithoutRecovery, deletes at once. The window ends on the
//     server's clock ([Options.Clock]); RestoreSecret cancels it.
//
// It does not emulate rotation Lambdas, replication, resource policies, KMS,
// or the tagging operations (TagResource, UntagResource); an operation it
// does not serve is UnknownOperationException.
//
// # Faults and observations
//
// [Server.FailNext] makes the next n requests of an operation, a secret or
// both fail: [Throttling], [InternalServiceError], [ServiceUnavailable],
// [AccessDenied], [DecryptionFailure], [DropConnection] or any [Fault].
// [Options.Delay] (or [Server.SetDelay]) holds requests to simulate latency;
// it can block on a channel, so tests need not sleep. [Server.Count] tells how
// many requests of each operation arrived. The same is reachable over HTTP,
// for clients not written in Go, under [ControlPath].
//
// # Address
//
// [NewServer] listens on a free loopback port, or on [Options.Addr];
// [New] returns the listener's error (an address in use) instead of
// failing.
//
// # Clients
//
// [Server.Client] is a ready *secretsmanager.Client: the server's region and
// static credentials, BaseEndpoint set to [Server.URL], and a retryer that
// retries like the SDK's standard one but without waiting
// ([InstantRetryer]).
package awssmtest
