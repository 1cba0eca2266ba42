package awssmtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// sigv4Algorithm is the only signing algorithm the emulator accepts.
const sigv4Algorithm = "AWS4-HMAC-SHA256"

// serviceName is the SigV4 signing name of AWS Secrets Manager.
const serviceName = "secretsmanager"

// authorization is a parsed SigV4 Authorization header.
type authorization struct {
	accessKeyID   string
	date          string // YYYYMMDD
	region        string
	service       string
	terminator    string
	signedHeaders []string
	signature     string
}

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/secretsmanager/aws4_request,
// SignedHeaders=a;b, Signature=hex". It reports an AWS-shaped error when the
// header is missing or malformed.
func parseAuthorization(h string) (authorization, *apiError) {
	if h == "" {
		return authorization{}, errMissingAuth()
	}
	alg, rest, ok := strings.Cut(h, " ")
	if !ok || alg != sigv4Algorithm {
		return authorization{}, newError(codeIncompleteSignature,
			"Authorization header requires the AWS4-HMAC-SHA256 algorithm (SigV4)")
	}
	var a authorization
	var credential, signed string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			a.signature = v
		}
	}
	if credential == "" || signed == "" || a.signature == "" {
		return authorization{}, newError(codeIncompleteSignature,
			"Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters")
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 {
		return authorization{}, newError(codeIncompleteSignature,
			"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term")
	}
	a.accessKeyID, a.date, a.region, a.service, a.terminator = scope[0], scope[1], scope[2], scope[3], scope[4]
	a.signedHeaders = strings.Split(signed, ";")
	return a, nil
}

// verifySigV4 checks r (whose body is body) against its Authorization header:
// the credential scope must name region and the secretsmanager service, the
// access key must be one the emulator knows (secretFor), and the signature
// must be the one computed over the canonical request.
func verifySigV4(r *http.Request, body []byte, region string, secretFor func(akid string) (string, bool)) *apiError {
	a, aerr := parseAuthorization(r.Header.Get("Authorization"))
	if aerr != nil {
		return aerr
	}
	if a.terminator != "aws4_request" {
		return newError(codeInvalidSignature, "Credential should be scoped with a valid terminator: 'aws4_request', not '"+a.terminator+"'.")
	}
	if a.service != serviceName {
		return newError(codeInvalidSignature, "Credential should be scoped to correct service: '"+serviceName+"'.")
	}
	if a.region != region {
		return newError(codeInvalidSignature, "Credential should be scoped to a valid region, not '"+a.region+"'. This endpoint serves '"+region+"'.")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return newError(codeIncompleteSignature, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if !strings.HasPrefix(amzDate, a.date) {
		return newError(codeInvalidSignature, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '"+a.date+"' != '"+amzDate+"'")
	}
	if !contains(a.signedHeaders, "host") {
		return newError(codeInvalidSignature, "'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	secret, ok := secretFor(a.accessKeyID)
	if !ok {
		return newError(codeUnrecognizedClient, "The security token included in the request is invalid.")
	}
	payload := sha256.Sum256(body)
	canonical := strings.Join([]string{
		r.Method,
		canonicalURI(r.URL),
		canonicalQuery(r.URL),
		canonicalHeaders(r, a.signedHeaders),
		strings.Join(a.signedHeaders, ";"),
		hex.EncodeToString(payload[:]),
	}, "\n")
	scope := strings.Join([]string{a.date, a.region, a.service, a.terminator}, "/")
	crHash := sha256.Sum256([]byte(canonical))
	stringToSign := sigv4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(crHash[:])

	key := signingKey(secret, a.date, a.region, a.service)
	want := hex.EncodeToString(hmacSHA256(key, stringToSign))
	if !hmac.Equal([]byte(want), []byte(a.signature)) {
		return newError(codeInvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return nil
}

// signingKeys caches derived signing keys, which change once a day, as the
// SDKs cache them: four HMACs a request fewer.
var signingKeys struct {
	sync.Mutex
	m map[string][]byte
}

// signingKey derives the SigV4 signing key of secret for a day, region and
// service.
func signingKey(secret, date, region, service string) []byte {
	id := secret + "\x00" + date + "\x00" + region + "\x00" + service
	signingKeys.Lock()
	defer signingKeys.Unlock()
	if k, ok := signingKeys.m[id]; ok {
		return k
	}
	if len(signingKeys.m) >= 64 || signingKeys.m == nil {
		signingKeys.m = map[string][]byte{}
	}
	key := hmacSHA256([]byte("AWS4"+secret), date)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, "aws4_request")
	signingKeys.m[id] = key
	return key
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// canonicalURI is the URI-encoded path, encoded once more as SigV4 does for
// every service but S3.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = uriEncode(s)
	}
	return strings.Join(segs, "/")
}

func canonicalQuery(u *url.URL) string {
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vals := append([]string(nil), q[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			parts = append(parts, uriEncode(k)+"="+uriEncode(v))
		}
	}
	return strings.Join(parts, "&")
}

// uriEncode percent-encodes every byte but the unreserved characters, as
// SigV4 specifies.
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
	}
	return b.String()
}

// canonicalHeaders renders the signed headers as "name:value\n" lines, in the
// order the client listed them (which SigV4 requires to be sorted).
func canonicalHeaders(r *http.Request, signed []string) string {
	var b strings.Builder
	for _, name := range signed {
		var value string
		switch name {
		case "host":
			value = r.Host
		case "content-length":
			value = strconv.FormatInt(r.ContentLength, 10)
		default:
			vals := append([]string(nil), r.Header.Values(name)...)
			for i, v := range vals {
				vals[i] = collapseSpaces(strings.TrimSpace(v))
			}
			value = strings.Join(vals, ",")
		}
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	return b.String()
}

func collapseSpaces(s string) string {
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}
