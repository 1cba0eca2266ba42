package awssm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/awssm"
	"github.com/keyprovider/keyprovider/awssm/awssmtest"
	"github.com/keyprovider/keyprovider/keyprovidertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness drives one secret of an emulator for the conformance suite.
type harness struct {
	srv  *awssmtest.Server
	name string
	// force: Delete deletes without recovery; otherwise it schedules the
	// deletion, which GetSecretValue answers with InvalidRequestException.
	force bool
}

func (h *harness) Provider(context.Context) (keyprovider.Provider, error) {
	return awssm.New(h.srv.Client(), h.name, awssm.WithService(keyprovider.Tessera))
}

// Set rotates the way Secrets Manager users do: PutSecretValue makes a new
// version AWSCURRENT; the first Set creates the secret.
func (h *harness) Set(ctx context.Context, value string) error {
	_, err := h.srv.Client().PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(h.name), SecretString: aws.String(value),
	})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		_, err = h.srv.Client().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String(h.name), SecretString: aws.String(value),
		})
	}
	return err
}

func (h *harness) Delete(ctx context.Context) error {
	in := &secretsmanager.DeleteSecretInput{SecretId: aws.String(h.name)}
	if h.force {
		in.ForceDeleteWithoutRecovery = aws.Bool(true)
	} else {
		in.RecoveryWindowInDays = aws.Int64(7)
	}
	_, err := h.srv.Client().DeleteSecret(ctx, in)
	return err
}

func (h *harness) Close() {}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name  string
		force bool
	}{
		{"ForceDelete", true},
		{"ScheduledDeletion", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keyprovidertest.RunConformance(t, func(_ context.Context, t *testing.T) (keyprovidertest.Harness, error) {
				return &harness{srv: awssmtest.NewServer(t), name: "conformance/tessera", force: tc.force}, nil
			})
		})
	}
}
