package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxEnvFileSize bounds what parseEnvFile reads: an env file is a page of
// settings, not a data set.
const maxEnvFileSize = 1 << 20

// envFile is a parsed env file: its path and its variables.
type envFile struct {
	path string
	vars map[string]string
}

// readEnvFile reads and parses the env file at path.
func readEnvFile(path string) (envFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return envFile{}, fmt.Errorf("env file: %w", err)
	}
	defer f.Close()
	vars, err := parseEnvFile(io.LimitReader(f, maxEnvFileSize+1))
	if err != nil {
		return envFile{}, fmt.Errorf("env file %s: %w", path, err)
	}
	return envFile{path: path, vars: vars}, nil
}

// parseEnvFile parses the KEY=VALUE lines of an env file, the format of
// Docker Compose's env_file and of dotenv, without any shell evaluation:
//
//   - Blank lines and lines whose first non-blank character is # are skipped.
//   - A line may start with "export ", which is ignored.
//   - KEY is a letter or underscore followed by letters, digits, underscores
//     or dots; blanks around "=" are ignored.
//   - An unquoted VALUE runs to the end of the line, or to a " #" comment,
//     with surrounding blanks trimmed. "$VAR" is not expanded.
//   - A VALUE in single quotes is taken literally.
//   - A VALUE in double quotes understands the escapes \\, \", \$, \n, \r
//     and \t, and nothing else: "$VAR" is not expanded there either.
//   - A quoted value ends on its line; only blanks and a # comment may follow
//     its closing quote.
//   - A variable set twice takes the last value, as in a shell.
//
// Errors give the line number and what is wrong, never the value, which may
// be a key.
func parseEnvFile(r io.Reader) (map[string]string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(data) > maxEnvFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxEnvFileSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 BOM
	vars := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxEnvFileSize)
	for n := 1; sc.Scan(); n++ {
		name, value, ok, err := parseEnvLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if ok {
			vars[name] = value
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return vars, nil
}

// parseEnvLine parses one line; ok is false for a blank or comment line.
func parseEnvLine(line string) (name, value string, ok bool, err error) {
	line = strings.TrimSuffix(line, "\r")
	s := strings.TrimLeft(line, " \t")
	if s == "" || s[0] == '#' {
		return "", "", false, nil
	}
	if rest, found := strings.CutPrefix(s, "export"); found && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		s = strings.TrimLeft(rest, " \t")
	}
	eq := strings.IndexByte(s, '=')
	if eq < 0 {
		return "", "", false, errors.New("expected KEY=VALUE")
	}
	name = strings.TrimRight(s[:eq], " \t")
	if !validEnvName(name) {
		// Not quoted back: a line of junk may well be a pasted key.
		return "", "", false, errors.New("invalid variable name before \"=\"")
	}
	value, err = parseEnvValue(strings.TrimLeft(s[eq+1:], " \t"))
	if err != nil {
		return "", "", false, fmt.Errorf("%s: %w", name, err)
	}
	return name, value, true, nil
}

func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case i > 0 && ('0' <= c && c <= '9' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// parseEnvValue parses what follows "=", leading blanks removed.
func parseEnvValue(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	switch s[0] {
	case '\'':
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", errors.New("unterminated single-quoted value")
		}
		return s[1 : 1+end], afterQuote(s[2+end:])
	case '"':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '"':
				return b.String(), afterQuote(s[i+1:])
			case c == '\\' && i+1 < len(s):
				i++
				switch s[i] {
				case '\\', '"', '$':
					b.WriteByte(s[i])
				case 'n':
					b.WriteByte('\n')
				case 'r':
					b.WriteByte('\r')
				case 't':
					b.WriteByte('\t')
				default:
					b.WriteByte('\\')
					b.WriteByte(s[i])
				}
			default:
				b.WriteByte(c)
			}
		}
		return "", errors.New("unterminated double-quoted value")
	}
	// Unquoted: a comment starts at a # preceded by a blank.
	for i := 1; i < len(s); i++ {
		if s[i] == '#' && (s[i-1] == ' ' || s[i-1] == '\t') {
			s = s[:i]
			break
		}
	}
	return strings.TrimRight(s, " \t"), nil
}

// afterQuote checks what follows a closing quote: blanks and a comment.
func afterQuote(rest string) error {
	rest = strings.TrimLeft(rest, " \t")
	if rest == "" || rest[0] == '#' {
		return nil
	}
	return errors.New("unexpected text after the closing quote")
}
