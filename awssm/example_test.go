package awssm_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/awssm"
	"github.com/keyprovider/keyprovider/awssm/awssmtest"
)

// A key kept as a field of a JSON secret, read with a client built
// elsewhere. The emulator stands in for AWS here; in production the client
// is secretsmanager.NewFromConfig(cfg).
func Example() {
	srv := awssmtest.Start()
	defer srv.Close()
	client := srv.Client()

	ctx := context.Background()
	_, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("prod/tessera"),
		SecretString: aws.String(`{"api_key": "sk-tessera-example0123456789", "owner": "search-team"}`),
	})
	if err != nil {
		log.Fatal(err)
	}

	p, err := awssm.New(client, "prod/tessera",
		awssm.WithJSONField("api_key"),
		awssm.WithService(keyprovider.Tessera))
	if err != nil {
		log.Fatal(err)
	}
	k, err := p.Fetch(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(k) // a Key prints its fingerprint, never its value
	// Output: sk-tessera-…0deabc250c0f
}

// FromEnv loads the default AWS configuration chain; a secret named by
// its ARN is read in the ARN's region. The Provider owns the client it
// built: Close releases its connections.
func ExampleFromEnv() {
	ctx := context.Background()
	p, err := awssm.FromEnv(ctx, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/tessera-AbCdEf",
		awssm.WithJSONField("api_key"),
		awssm.WithService(keyprovider.Tessera))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	k, err := p.Fetch(ctx)
	switch {
	case errors.Is(err, keyprovider.ErrPermission):
		log.Fatalf("check the IAM policy and the KMS key policy: %v", err)
	case err != nil:
		log.Fatal(err)
	}
	log.Printf("loaded %v", k)
}

// With WithLookupEnv, FromEnv reads that environment and nothing else: an
// env file's AWS_ENDPOINT_URL only ever receives the env file's own
// credentials, never the process's.
func ExampleWithLookupEnv() {
	srv := awssmtest.Start()
	defer srv.Close()
	ctx := context.Background()
	_, err := srv.Client().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("staging/tessera"), SecretString: aws.String("sk-tessera-example0123456789"),
	})
	if err != nil {
		log.Fatal(err)
	}

	envFile := map[string]string{ // as read from staging.env
		"AWS_REGION":            awssmtest.DefaultRegion,
		"AWS_ACCESS_KEY_ID":     awssmtest.DefaultAccessKeyID,
		"AWS_SECRET_ACCESS_KEY": awssmtest.DefaultSecretAccessKey,
		"AWS_ENDPOINT_URL":      srv.URL(),
	}
	p, err := awssm.FromEnv(ctx, "staging/tessera",
		awssm.WithLookupEnv(func(name string) (string, bool) { v, ok := envFile[name]; return v, ok }),
		awssm.WithService(keyprovider.Tessera))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	k, err := p.Fetch(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(k)

	delete(envFile, "AWS_SECRET_ACCESS_KEY")
	_, err = awssm.FromEnv(ctx, "staging/tessera", awssm.WithLookupEnv(func(name string) (string, bool) {
		v, ok := envFile[name]
		return v, ok
	}))
	fmt.Println(errors.Is(err, keyprovider.ErrInvalidKey))
	// Output:
	// sk-tessera-…0deabc250c0f
	// true
}
