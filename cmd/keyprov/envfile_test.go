package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
)

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"plain", "A=1\nB=two\n", map[string]string{"A": "1", "B": "two"}},
		{"comments and blanks", "# dev settings\n\n   # indented comment\nA=1\n", map[string]string{"A": "1"}},
		{"export prefix", "export A=1\nexport\tB=2\n", map[string]string{"A": "1", "B": "2"}},
		{"variable named export", "export=1\nexporter=2\n", map[string]string{"export": "1", "exporter": "2"}},
		{"blanks around =", "A = 1\n  B\t=\t2  \n", map[string]string{"A": "1", "B": "2"}},
		{"empty value", "A=\nB=''\nC=\"\"\n", map[string]string{"A": "", "B": "", "C": ""}},
		{"inline comment", "A=1 # the first\nB=x#not-a-comment\n", map[string]string{"A": "1", "B": "x#not-a-comment"}},
		{"single quotes are literal", `A='a b $HOME \n # x'`, map[string]string{"A": `a b $HOME \n # x`}},
		{"double quote escapes", `A="a\"b\\c\$d\ne\tf\x"`, map[string]string{"A": "a\"b\\c$d\ne\tf\\x"}},
		{"no expansion", "HOME2=$HOME\nB=\"${HOME}\"\n", map[string]string{"HOME2": "$HOME", "B": "${HOME}"}},
		{"comment after quote", `A="v" # note`, map[string]string{"A": "v"}},
		{"equals in value", "A=vault://kv/app#key?version=3\n", map[string]string{"A": "vault://kv/app#key?version=3"}},
		{"fragment stays", "A=vault://kv/app#key # prod\n", map[string]string{"A": "vault://kv/app#key"}},
		{"last wins", "A=1\nA=2\n", map[string]string{"A": "2"}},
		{"CRLF", "A=1\r\nB='2'\r\n", map[string]string{"A": "1", "B": "2"}},
		{"BOM", "\xef\xbb\xbfA=1\n", map[string]string{"A": "1"}},
		{"no final newline", "A=1", map[string]string{"A": "1"}},
		{"dotted name", "a.b_C9=1", map[string]string{"a.b_C9": "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseEnvFile(strings.NewReader(tc.in))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseEnvFileErrors(t *testing.T) {
	const secret = "sk-tessera-DoNotPrintMe0123456789"
	tests := []struct {
		name     string
		in       string
		wantLine string
		wantErr  string
	}{
		{"no equals", "A=1\n" + secret + "\n", "line 2", "expected KEY=VALUE"},
		{"bad name", secret + "=x\n", "line 1", "invalid variable name"},
		{"name starts with digit", "1A=x", "line 1", "invalid variable name"},
		{"name with dash", "MY-VAR=x", "line 1", "invalid variable name"},
		{"empty name", "=x", "line 1", "invalid variable name"},
		{"unterminated single", "\nA='" + secret, "line 2", "unterminated single-quoted"},
		{"unterminated double", "A=\"" + secret, "line 1", "unterminated double-quoted"},
		{"trailing backslash", "A=\"" + secret + `\`, "line 1", "unterminated double-quoted"},
		{"text after quote", "A='" + secret + "'x", "line 1", "after the closing quote"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseEnvFile(strings.NewReader(tc.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantLine)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.NotContains(t, err.Error(), "DoNotPrintMe", "the error must not quote the value")
		})
	}
}

func TestReadEnvFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dev.env")
	require.NoError(t, os.WriteFile(path, []byte("TESSERA_API_KEY=sk-tessera-x\n"), 0o600))
	f, err := readEnvFile(path)
	require.NoError(t, err)
	assert.Equal(t, path, f.path)
	assert.Equal(t, map[string]string{"TESSERA_API_KEY": "sk-tessera-x"}, f.vars)

	_, err = readEnvFile(filepath.Join(dir, "missing.env"))
	require.ErrorIs(t, err, os.ErrNotExist)

	big := filepath.Join(dir, "big.env")
	require.NoError(t, os.WriteFile(big, []byte("A="+strings.Repeat("x", maxEnvFileSize)), 0o600))
	_, err = readEnvFile(big)
	require.ErrorContains(t, err, "larger than")
}

// FuzzParseEnvFile checks that the parser never panics, only returns valid
// names, never quotes a value back in an error, and reads back a value it was
// given in single quotes.
func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{"A=1", "export A='x'", `A="a\"b" # c`, "# c\n\nB=2 #x", "A='", "=", "\xef\xbb\xbfA=1\r\n"} {
		f.Add(s, "value")
	}
	f.Fuzz(func(t *testing.T, file, value string) {
		vars, err := parseEnvFile(strings.NewReader(file))
		if err == nil {
			for name := range vars {
				if !validEnvName(name) {
					t.Fatalf("invalid name %q accepted", name)
				}
			}
		}
		if strings.ContainsAny(value, "'\r\n") {
			return
		}
		vars, err = parseEnvFile(strings.NewReader("K='" + value + "'\n"))
		if err != nil {
			t.Fatalf("single-quoted value: %v", err)
		}
		if vars["K"] != value {
			t.Fatalf("got %q, want %q", vars["K"], value)
		}
		const marker = "ZZsecretZZ"
		_, err = parseEnvFile(strings.NewReader(file + "\nK='" + marker + value))
		if err != nil && strings.Contains(err.Error(), marker) {
			t.Fatalf("error quotes the value: %v", err)
		}
	})
}

func TestLookupServiceIgnoresCaseAndKnowsOnlyKnownServices(t *testing.T) {
	for _, want := range keyprovider.KnownServices() {
		for _, name := range []string{want.Name, strings.ToUpper(want.Name), " " + want.Name} {
			got, ok := lookupService(strings.TrimSpace(name))
			assert.True(t, ok, name)
			assert.Equal(t, want, got, name)
		}
	}
	_, ok := lookupService("openai")
	assert.False(t, ok)
}
