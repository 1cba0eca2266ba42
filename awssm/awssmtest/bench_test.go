package awssmtest_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyprovider/keyprovider/awssm/awssmtest"
)

// BenchmarkGetSecretValue is GetSecretValue through the real SDK client over
// loopback HTTP, client and server in one process: run it with -cpu 1 for
// calls per second from one core (target 5,000/s).
func BenchmarkGetSecretValue(b *testing.B) {
	srv := awssmtest.NewServer(b)
	c := srv.Client()
	seedBench(b, c)
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String("bench")}
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := c.GetSecretValue(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b, cpu0)
}

// BenchmarkServeGetSecretValue is the server's side alone: one signed
// GetSecretValue request handled (signature checked, value read, answer
// encoded) without a network or a client.
func BenchmarkServeGetSecretValue(b *testing.B) {
	srv := awssmtest.NewServer(b)
	seedBench(b, srv.Client())
	body := []byte(`{"SecretId":"bench"}`)
	sign := signer(awssmtest.DefaultAccessKeyID, awssmtest.DefaultSecretAccessKey, "secretsmanager", srv.Region())
	req := httptest.NewRequest(http.MethodPost, srv.URL()+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	sign(req, body)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		r := req.Clone(req.Context())
		r.Body = nopCloser{bytes.NewReader(body)}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body.String())
		}
	}
	reportRates(b, cpu0)
}

// BenchmarkGetSecretValueLoopback is the server over loopback TCP with the
// lightest client there is: one pre-signed GetSecretValue sent again and
// again on a kept-alive connection. With -cpu 1, client and server share
// one core.
func BenchmarkGetSecretValueLoopback(b *testing.B) {
	srv := awssmtest.NewServer(b)
	seedBench(b, srv.Client())
	body := []byte(`{"SecretId":"bench"}`)
	sign := signer(awssmtest.DefaultAccessKeyID, awssmtest.DefaultSecretAccessKey, "secretsmanager", srv.Region())
	req, err := http.NewRequest(http.MethodPost, srv.URL()+"/", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	sign(req, body)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	buf := make([]byte, 4096)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		r := req.Clone(ctx)
		r.Body = nopCloser{bytes.NewReader(body)}
		resp, err := client.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				break
			}
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.StatusCode)
		}
	}
	reportRates(b, cpu0)
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func seedBench(b *testing.B, c *secretsmanager.Client) {
	b.Helper()
	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bench"), SecretString: aws.String("sk-bench-value")})
	if err != nil {
		b.Fatal(err)
	}
}

// reportRates reports calls per wall-clock second and per CPU second of the
// process (client and server together) since cpu0.
func reportRates(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	if used := cpuTime() - cpu0; cpu0 > 0 && used > 0 {
		b.ReportMetric(float64(b.N)/used.Seconds(), "calls/cpu-s")
	}
}
