package keyprovider_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
)

type Ref = keyprovider.Ref

func TestParseRefValid(t *testing.T) {
	tests := []struct {
		in        string
		want      Ref
		canonical string // "" means in
	}{
		// env
		{in: "env://OTHER_VAR", want: Ref{Scheme: "env", Path: "OTHER_VAR"}},
		{in: "env://_x9", want: Ref{Scheme: "env", Path: "_x9"}},
		{in: "ENV://A", want: Ref{Scheme: "env", Path: "A"}, canonical: "env://A"},
		// file
		{in: "file:///run/secrets/tessera", want: Ref{Scheme: "file", Path: "/run/secrets/tessera"}},
		{in: "file:///a%20b/c%23d%3Fe%25f", want: Ref{Scheme: "file", Path: "/a b/c#d?e%f"}},
		{in: "file:///caf%C3%A9", want: Ref{Scheme: "file", Path: "/café"}, canonical: "file:///café"},
		{in: "file:///café", want: Ref{Scheme: "file", Path: "/café"}},
		{in: "file:///x:y=z&w", want: Ref{Scheme: "file", Path: "/x:y=z&w"}},
		// vault
		{in: "vault://kv/tessera", want: Ref{Scheme: "vault", Mount: "kv", Path: "tessera"}},
		{in: "vault://kv/apps/tessera/prod#api_key", want: Ref{Scheme: "vault", Mount: "kv", Path: "apps/tessera/prod", Field: "api_key"}},
		{
			in:   "vault://secret/tessera#api_key?version=3",
			want: Ref{Scheme: "vault", Mount: "secret", Path: "tessera", Field: "api_key", Params: map[string]string{"version": "3"}},
		},
		{
			in:        "vault://secret/tessera?namespace=team-a/prod&version=12#api_key",
			want:      Ref{Scheme: "vault", Mount: "secret", Path: "tessera", Field: "api_key", Params: map[string]string{"version": "12", "namespace": "team-a/prod"}},
			canonical: "vault://secret/tessera#api_key?version=12&namespace=team-a/prod",
		},
		{
			in:        "vault://kv/t?version=007",
			want:      Ref{Scheme: "vault", Mount: "kv", Path: "t", Params: map[string]string{"version": "7"}},
			canonical: "vault://kv/t?version=7",
		},
		{in: "vault://team%2Fkv/app#key", want: Ref{Scheme: "vault", Mount: "team/kv", Path: "app", Field: "key"}},
		{in: "vault://kv/a%2Fb", want: Ref{Scheme: "vault", Mount: "kv", Path: "a/b"}, canonical: "vault://kv/a/b"},
		{in: "vault://kv/app#we%23ird%3Ffield", want: Ref{Scheme: "vault", Mount: "kv", Path: "app", Field: "we#ird?field"}},
		// awssm
		{in: "awssm://prod/tessera", want: Ref{Scheme: "awssm", Path: "prod/tessera"}},
		{
			in:   "awssm://prod/tessera#api_key?region=eu-west-1&stage=AWSPREVIOUS",
			want: Ref{Scheme: "awssm", Path: "prod/tessera", Field: "api_key", Params: map[string]string{"region": "eu-west-1", "stage": "AWSPREVIOUS"}},
		},
		{
			in:   "awssm://arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/tessera-AbCdEf#api_key",
			want: Ref{Scheme: "awssm", Path: "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/tessera-AbCdEf", Field: "api_key"},
		},
		{
			in:        "awssm://arn:aws:secretsmanager:us-east-1:123456789012:secret:t-AbCdEf?version-id=EXAMPLE1-90ab&region=us-east-1",
			want:      Ref{Scheme: "awssm", Path: "arn:aws:secretsmanager:us-east-1:123456789012:secret:t-AbCdEf", Params: map[string]string{"region": "us-east-1", "version-id": "EXAMPLE1-90ab"}},
			canonical: "awssm://arn:aws:secretsmanager:us-east-1:123456789012:secret:t-AbCdEf?region=us-east-1&version-id=EXAMPLE1-90ab",
		},
		{in: "awssm://a+b=c.d@e_f-g", want: Ref{Scheme: "awssm", Path: "a+b=c.d@e_f-g"}},
		{in: "awssm://t#a%26b%3Dc?stage=my%26stage", want: Ref{Scheme: "awssm", Path: "t", Field: "a&b=c", Params: map[string]string{"stage": "my&stage"}}, canonical: "awssm://t#a&b=c?stage=my%26stage"},
		// op
		{in: "op://Private/Tessera/credential", want: Ref{Scheme: "op", Path: "Private/Tessera/credential"}},
		{in: "op://Prod Vault/Tessera API/keys/api key", want: Ref{Scheme: "op", Path: "Prod Vault/Tessera API/keys/api key"}},
		{in: "op://v/i/s/f?attribute=otp", want: Ref{Scheme: "op", Path: "v/i/s/f", Params: map[string]string{"attribute": "otp"}}},
		{in: "op://v/i/f%20x", want: Ref{Scheme: "op", Path: "v/i/f%20x"}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := keyprovider.ParseRef(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			canonical := tc.canonical
			if canonical == "" {
				canonical = tc.in
			}
			assert.Equal(t, canonical, got.String())
			again, err := keyprovider.ParseRef(got.String())
			require.NoError(t, err, "the canonical text must parse")
			assert.Equal(t, got, again, "parse → String → parse")
		})
	}
}

func TestParseRefInvalid(t *testing.T) {
	tests := []struct {
		in   string
		want string // a part of the message
	}{
		{"", `does not start with "scheme://"`},
		{"sk-tessera-abc", `does not start with "scheme://"`},
		{"vault:/kv/x", `does not start with "scheme://"`},
		{"://x", `does not start with "scheme://"`},
		{"1abc://x", `does not start with "scheme://"`},
		{"foo://bar", `unknown scheme "foo"; known: env, file, vault, awssm, op`},
		{"vualt://kv/x", `(did you mean vault://?)`},
		{"http://example.com/key", `unknown scheme "http"`},
		// env
		{"env://", "takes a variable name"},
		{"env://1X", "takes a variable name"},
		{"env://A-B", "takes a variable name"},
		{"env://A#f", "take no #field"},
		{"env://A?x=1", `unknown parameter "x": this scheme takes none`},
		// file
		{"file://", "absolute path"},
		{"file://run/secrets/x", "absolute path, after three slashes"},
		{"file://localhost/x", "absolute path"},
		{"file:///a b", "space at byte 9 (write it as %20)"},
		{"file:///a%zz", "bad escape"},
		{"file:///a%2", "bad escape"},
		{"file:///a%00", "NUL"},
		{"file:///a%ff", "invalid UTF-8"},
		{"file:///a\nb", "control character 0x0a"},
		{"file:///a#b", "take no #field"},
		// vault
		{"vault://kv", "takes a mount and a path"},
		{"vault://kv/", "takes a mount and a path"},
		{"vault:///x", "takes a mount and a path"},
		{"vault://kv//x", "empty segment"},
		{"vault://kv/x/", "empty segment"},
		{"vault://kv/x#", "empty #field"},
		{"vault://kv/x?", `"?" with no parameters`},
		{"vault://kv/x#f?version=0", "positive integer"},
		{"vault://kv/x#f?version=-1", "positive integer"},
		{"vault://kv/x#f?version=latest", "positive integer"},
		{"vault://kv/x#f?version=1&version=2", "given twice"},
		{"vault://kv/x#f?version=", "parameter version is empty"},
		{"vault://kv/x#f?version", `must be "name=value"`},
		{"vault://kv/x#f?verison=1", `unknown parameter "verison" (allowed: version, namespace)`},
		{"vault://kv/x#f#g", `a second '#'`},
		{"vault://kv/x?version=1?namespace=a", `a second '?'`},
		{"vault://kv/x#f?version=1#g", `a second '#'`},
		// awssm
		{"awssm://", "takes a secret name or ARN"},
		{"awssm://a b", "space"},
		{"awssm://a%20b", "not allowed in a secret name"},
		{"awssm://arn:aws:s3:::bucket", "not a Secrets Manager secret ARN"},
		{"awssm://t?stage=AWSCURRENT&version-id=v1", "give one"},
		{"awssm://t?region=EU_WEST", "AWS region name"},
		{"awssm://arn:aws:secretsmanager:us-east-1:123456789012:secret:t-AbCdEf?region=eu-west-1", "differs from the ARN's region us-east-1"},
		{"awssm://t?version=1", `unknown parameter "version" (allowed: region, stage, version-id)`},
		// op
		{"op://v/i", "op://VAULT/ITEM/[SECTION/]FIELD"},
		{"op://v/i/s/f/g", "op://VAULT/ITEM/[SECTION/]FIELD"},
		{"op://v//f", "op://VAULT/ITEM/[SECTION/]FIELD"},
		{"op://v/i/f#x", "take no #field"},
		{"op://v/i/f?field=x", `unknown parameter "field" (allowed: attribute, ssh-format)`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := keyprovider.ParseRef(tc.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
			var re *keyprovider.RefError
			require.ErrorAs(t, err, &re)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// A value before "://" may be the start of a key that happens to contain
// "://": the error must not show it.
func TestParseRefUnknownSchemeDoesNotEchoKeys(t *testing.T) {
	for _, in := range []string{
		"sk-tessera-AbCdEf012345://x",
		"sk-tess://x", // a prefix of a known key prefix, short enough to show otherwise
		"Zq9x7Lm2Pr4T://rest-of-a-key",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := keyprovider.ParseRef(in)
			require.Error(t, err)
			scheme, _, _ := strings.Cut(in, "://")
			assert.NotContains(t, err.Error(), scheme)
			assert.NotContains(t, strings.ToLower(err.Error()), strings.ToLower(scheme))
			assert.Contains(t, err.Error(), "not shown")
			var re *keyprovider.RefError
			require.True(t, errors.As(err, &re))
			assert.Empty(t, re.Ref)
		})
	}
}

// Text whose "scheme" has characters no scheme has is not a reference at
// all: a Tesseral key containing "://" stays a literal key.
func TestParseRefNotASchemeIsNotAReference(t *testing.T) {
	_, err := keyprovider.ParseRef("tesseral_secret_key_0123://x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a reference")
	assert.NotContains(t, err.Error(), "0123")
}

func TestRefStringZeroAndParam(t *testing.T) {
	assert.Equal(t, "", Ref{}.String())
	assert.True(t, Ref{}.IsZero())
	r, err := keyprovider.ParseRef("vault://kv/x?version=2")
	require.NoError(t, err)
	assert.False(t, r.IsZero())
	assert.Equal(t, "2", r.Param("version"))
	assert.Equal(t, "", r.Param("namespace"))
}

// A Ref built by hand, with characters that need escaping, prints as text
// that parses back to it.
func TestRefStringEscapes(t *testing.T) {
	tests := []Ref{
		{Scheme: "file", Path: "/dir with space/#hash?q%pct\ttab"},
		{Scheme: "vault", Mount: "team/kv", Path: "a b/c#d", Field: "f?g#h%i", Params: map[string]string{"namespace": "n&s=x", "version": "4"}},
		{Scheme: "awssm", Path: "prod/t", Field: "a b", Params: map[string]string{"stage": "S&T", "region": "eu-west-1"}},
	}
	for _, want := range tests {
		t.Run(want.String(), func(t *testing.T) {
			got, err := keyprovider.ParseRef(want.String())
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

func BenchmarkParseRef(b *testing.B) {
	for _, in := range []string{
		"env://OTHER_VAR",
		"vault://secret/apps/tessera#api_key?version=3&namespace=team-a",
		"awssm://arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/tessera-AbCdEf#api_key",
	} {
		b.Run(strings.SplitN(in, ":", 2)[0], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := keyprovider.ParseRef(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
