package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
)

// FuzzParseLinkedRef is the root's FuzzParseRef with every backend linked
// in, as keyprov links them: parsing never panics, every error is a
// *RefError wrapping ErrInvalidKey that prints no key, and every accepted
// reference round-trips (parse → String → parse gives the same Ref, and
// String is a fixed point), in each backend's own grammar.
func FuzzParseLinkedRef(f *testing.F) {
	for _, seed := range []string{
		"env://OTHER_VAR",
		"file:///run/secrets/tessera",
		"vault://kv/tessera#api_key?version=3",
		"vault://secret/t?namespace=a/b&version=2#f",
		"vault://team%2Fkv/app#key",
		"vault://kv/..%2F..%2Fsys/raw",
		"vault://kv/x?namespace=a%0D%0Ab",
		"awssm://prod/tessera#api_key?region=eu-west-1&stage=AWSCURRENT",
		"awssm://arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/t-AbCdEf#k?version-id=v1",
		"awssm://arn:aws:secretsmanager:eu/west@1:123456789012:secret:t",
		"op://Prod Vault/Tessera/keys/api key?attribute=otp",
		"file://sk-tessera-Zq9x7Lm2Pr4TkV8wQ3nB",
		"VAULT://kv/x?version=007",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := keyprovider.ParseRef(s)
		if err != nil {
			var re *keyprovider.RefError
			if !errors.As(err, &re) || !errors.Is(err, keyprovider.ErrInvalidKey) {
				require.FailNowf(t, "FuzzParseLinkedRef", "ParseRef(%q): error %v is not a *RefError wrapping ErrInvalidKey", s, err)
			}
			if i := strings.Index(s, "sk-tessera-"); i >= 0 && len(s)-i >= 24 && strings.Contains(err.Error(), s[i:i+24]) {
				require.FailNowf(t, "FuzzParseLinkedRef", "ParseRef(%q): the error prints the key: %v", s, err)
			}
			return
		}
		text := r.String()
		again, err := keyprovider.ParseRef(text)
		if err != nil {
			require.FailNowf(t, "FuzzParseLinkedRef", "ParseRef(%q) = %#v, whose String %q does not parse: %v", s, r, text, err)
		}
		if !sameRef(r, again) {
			require.FailNowf(t, "FuzzParseLinkedRef", "round trip of %q: %#v → %q → %#v", s, r, text, again)
		}
		if again.String() != text {
			require.FailNowf(t, "FuzzParseLinkedRef", "String is not canonical: %q then %q", text, again.String())
		}
	})
}

func sameRef(a, b keyprovider.Ref) bool {
	if a.Scheme != b.Scheme || a.Mount != b.Mount || a.Path != b.Path || a.Field != b.Field || len(a.Params) != len(b.Params) {
		return false
	}
	for k, v := range a.Params {
		if w, ok := b.Params[k]; !ok || w != v {
			return false
		}
	}
	return true
}
