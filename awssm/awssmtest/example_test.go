package awssmtest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyprovider/keyprovider/awssm/awssmtest"
)

// databasePassword is the code under test: it reads a secret with any
// Secrets Manager client.
func databasePassword(ctx context.Context, sm *secretsmanager.Client, name string) (string, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	return aws.ToString(out.SecretString), nil
}

// Testing your own code against the emulator: seed a secret through the
// ready client, make AWS throttle the first request, and check that the
// SDK's retry (which the emulator's client runs without waiting) absorbs it.
// In a test, awssmtest.NewServer(t) starts the server and closes it at the
// end of the test.
func Example() {
	srv := awssmtest.Start()
	defer srv.Close()
	ctx := context.Background()

	_, err := srv.Client().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("prod/db"),
		SecretString: aws.String("hunter2"),
	})
	if err != nil {
		log.Fatal(err)
	}
	srv.FailNext(awssmtest.Match{Op: "GetSecretValue"}, awssmtest.Throttling, 1)

	pw, err := databasePassword(ctx, srv.Client(), "prod/db")
	fmt.Println(pw, err)
	fmt.Println("GetSecretValue requests:", srv.Count("GetSecretValue"))

	_, err = databasePassword(ctx, srv.Client(), "prod/nope")
	fmt.Println(err != nil)
	// Output:
	// hunter2 <nil>
	// GetSecretValue requests: 2
	// true
}

// Clients with other settings: here one that never retries, to see the
// first failure as it is.
func ExampleServer_NewClient() {
	srv := awssmtest.Start()
	defer srv.Close()
	client := srv.NewClient(func(o *secretsmanager.Options) { o.Retryer = aws.NopRetryer{} })

	srv.FailNext(awssmtest.Match{}, awssmtest.AccessDenied, 1)
	_, err := client.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("any")})
	fmt.Println(err != nil, srv.Count("DescribeSecret"))
	// Output: true 1
}
