package awssm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
	"github.com/keyprovider/keyprovider/rotation"
)

// StagePending is the staging label of a version being rotated in: written,
// not yet served to readers of AWSCURRENT.
const StagePending = "AWSPENDING"

// WriteAPI is the part of the Secrets Manager client a [Provider] writes
// through, as a [rotation.Writer]. *secretsmanager.Client satisfies it; a
// client given to [New] that does not makes Stage fail.
type WriteAPI interface {
	API
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
}

var _ rotation.Writer = (*Provider)(nil)

// errNotWriter is the cause of a write through a client that cannot write.
var errNotWriter = errors.New("the client cannot write (it has no PutSecretValue and UpdateSecretVersionStage)")

// errPinned is the cause of a write through a Provider pinned to a
// version or a stage other than AWSCURRENT.
var errPinned = errors.New("the Provider reads a pinned version or stage; rotation writes AWSCURRENT's secret")

func (p *Provider) writer() (WriteAPI, error) {
	if p.opts.VersionID != "" || p.opts.VersionStage != StageCurrent {
		return nil, p.fail(keyprovider.ErrInvalidKey, errPinned)
	}
	w, ok := p.client.(WriteAPI)
	if !ok {
		return nil, p.fail(keyprovider.ErrInvalidKey, errNotWriter)
	}
	return w, nil
}

// RequestToken is the ClientRequestToken Stage sends: a UUID-shaped digest
// of next's fingerprint and of the version it replaces, so that staging
// the same key over the same version again (a re-run after a crash) is
// AWS's idempotent retry, not a second version.
func RequestToken(next keyprovider.Key, currentVersion string) string {
	sum := sha256.Sum256([]byte("keyprovider/rotation\x00" + next.Fingerprint() + "\x00" + currentVersion))
	h := hex.EncodeToString(sum[:16])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Stage writes next as a new version of the secret labelled AWSPENDING
// only (rotation's "set secret" step): readers of AWSCURRENT still get
// current. With [Options.JSONField], the new version is the object of
// current's version with that field replaced, the other fields kept. Its
// ClientRequestToken is [RequestToken], so a re-run is idempotent.
func (p *Provider) Stage(ctx context.Context, current, next keyprovider.Key) (rotation.Staged, error) {
	w, err := p.writer()
	if err != nil {
		return rotation.Staged{}, err
	}
	if next.Equal(current) {
		return rotation.Staged{}, p.fail(keyprovider.ErrInvalidKey, rotation.ErrSameKey)
	}
	if _, err := p.opts.Service.ParseKey(next.Reveal(), ""); err != nil {
		return rotation.Staged{}, p.fail(keyprovider.ErrInvalidKey, err)
	}
	value, err := p.newValue(ctx, current.Version(), next)
	if err != nil {
		return rotation.Staged{}, err
	}
	out, err := w.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(p.secretID),
		SecretString:       aws.String(value),
		ClientRequestToken: aws.String(RequestToken(next, current.Version())),
		VersionStages:      []string{StagePending},
	})
	if err != nil {
		return rotation.Staged{}, p.failWrite(ctx, next, err)
	}
	version := aws.ToString(out.VersionId)
	return rotation.Staged{Mode: rotation.Pending, Current: current.Version(), Version: version, Next: keyprovider.NewKey(next.Reveal(), version), Previous: current}, nil
}

// failWrite is classify for a write that sent next: an AWS or a proxy that
// echoes the request cannot put the new key in the error, whatever its
// shape (vault's and onepassword's failWrite do the same).
func (p *Provider) failWrite(ctx context.Context, next keyprovider.Key, err error) error {
	e := p.classify(ctx, err)
	if ke := (*keyprovider.Error)(nil); errors.As(e, &ke) {
		ke.Err = redact.Error(ke.Err, next.Reveal())
	}
	return e
}

// newValue is the secret string of the new version.
func (p *Provider) newValue(ctx context.Context, currentVersion string, next keyprovider.Key) (string, error) {
	if p.opts.JSONField == "" {
		return next.Reveal(), nil
	}
	out, err := p.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(p.secretID), VersionId: aws.String(currentVersion),
	})
	if err != nil {
		return "", p.classify(ctx, err)
	}
	obj, _, err := p.decode(out) // the field is there, a string
	if err != nil {
		return "", err
	}
	field, _ := json.Marshal(next.Reveal())
	obj[p.opts.JSONField] = field
	b, _ := json.Marshal(obj) // RawMessages that decoded: cannot fail
	return string(b), nil
}

// Promote moves AWSCURRENT to the staged version (rotation's "finish
// secret" step); AWS moves AWSPREVIOUS to the version that was current, so
// the old key stays readable there until the next rotation. AWSPENDING is
// then taken off the promoted version. AWSCURRENT no longer on s.Current
// (another rotation came first) is an error wrapping [rotation.ErrConflict].
func (p *Provider) Promote(ctx context.Context, s rotation.Staged) (keyprovider.Key, error) {
	w, err := p.writer()
	if err != nil {
		return keyprovider.Key{}, err
	}
	cur, err := p.Fetch(ctx)
	if err != nil {
		return keyprovider.Key{}, err
	}
	if cur.Version() == s.Version {
		return cur, nil // promoted already (a re-run)
	}
	if cur.Version() != s.Current {
		return keyprovider.Key{}, p.fail(rotation.ErrConflict,
			fmt.Errorf("AWSCURRENT is on version %s, not on version %s that was read", cur.Version(), s.Current))
	}
	if _, err := w.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(p.secretID), VersionStage: aws.String(StageCurrent),
		MoveToVersionId: aws.String(s.Version), RemoveFromVersionId: aws.String(s.Current),
	}); err != nil {
		return keyprovider.Key{}, p.classify(ctx, err)
	}
	_, _ = w.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(p.secretID), VersionStage: aws.String(StagePending),
		RemoveFromVersionId: aws.String(s.Version),
	}) // tidying only: AWSCURRENT is what readers follow
	return keyprovider.NewKey(s.Next.Reveal(), s.Version), nil
}

// Abandon takes AWSPENDING off the staged version. AWS keeps the version,
// without a label, until it prunes unlabelled versions itself; nothing
// reads it.
func (p *Provider) Abandon(ctx context.Context, s rotation.Staged) (string, error) {
	w, err := p.writer()
	if err != nil {
		return "", err
	}
	if _, err := w.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(p.secretID), VersionStage: aws.String(StagePending),
		RemoveFromVersionId: aws.String(s.Version),
	}); err != nil {
		return "version " + s.Version + " is left marked AWSPENDING", p.classify(ctx, err)
	}
	return "version " + s.Version + " no longer has AWSPENDING (AWS keeps it unlabelled and prunes it; nothing reads it)", nil
}
