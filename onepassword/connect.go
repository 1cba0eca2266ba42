package onepassword

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/1Password/connect-sdk-go/connect"
	op "github.com/1Password/connect-sdk-go/onepassword"
	"github.com/opentracing/opentracing-go"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
)

// ConnectAPI is the part of a 1Password Connect client a [Provider] uses in
// Connect mode. The connect.Client of github.com/1Password/connect-sdk-go
// satisfies it.
type ConnectAPI interface {
	GetVaultByUUID(uuid string) (*op.Vault, error)
	GetVaultsByTitle(title string) ([]op.Vault, error)
	GetItemByUUID(uuid, vaultQuery string) (*op.Item, error)
	GetItemsByTitle(title, vaultQuery string) ([]op.Item, error)
}

var _ ConnectAPI = connect.Client(nil)

// AmbiguousError reports a name of a reference that matches more than one
// vault, item, section or field. Connect mode never guesses: rename one of
// them, or use an ID in the reference. It unwraps to
// [keyprovider.ErrNotFound]: no single secret was found.
type AmbiguousError struct {
	// What is "vault", "item", "section" or "field".
	What string
	// Name is the name or label of the reference.
	Name string
	// Count is how many matched.
	Count int
}

// Error says what matched how many times, and what to do about it.
func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%d %ss match %q; rename all but one, or name the %s by its ID", e.Count, e.What, e.Name, e.What)
}

// Unwrap returns [keyprovider.ErrNotFound].
func (e *AmbiguousError) Unwrap() error { return keyprovider.ErrNotFound }

// NewConnect returns a Provider reading ref through a Connect server. It
// validates ref with the SDK (see the package documentation for the cost of
// the first use) but does not contact the server. It fails, with an error
// wrapping [keyprovider.ErrInvalidKey], if client is nil or ref is not a valid
// secret reference, or asks for an attribute other than the field's value.
//
// A [*ConnectClient] (from [NewConnectClient]) tells the Provider its token,
// which its errors are then scrubbed of; the token of any other client is
// unknown to it, and its errors are scrubbed of key-shaped text only.
func NewConnect(client ConnectAPI, ref string, opts ...Option) (*Provider, error) {
	if client == nil {
		return nil, configError(ref, "nil Connect client")
	}
	var creds []redact.Secret
	if cc, ok := client.(*ConnectClient); ok {
		if cc == nil || cc.c == nil {
			return nil, configError(ref, "nil Connect client")
		}
		creds = append(creds, cc.token)
	}
	return newProvider(context.Background(), &connectBackend{c: client, ids: &connectIDs{}}, ref, options(opts), creds...)
}

// ConnectClient is a connect-sdk-go client that knows its token, so that a
// [Provider] made with it scrubs the token from its errors. It holds the
// client and the token the way [keyprovider.Key] holds a key, behind
// pointers to no struct: printing a ConnectClient, or a struct holding one,
// by any fmt verb, shows no token (connect-sdk-go's client keeps its token
// in a plain field). [ConnectClient.Client] returns the connect-sdk-go
// client, for the calls of the Connect API a Provider does not make.
type ConnectClient struct {
	c     *connect.Client
	token redact.Secret
}

var _ ConnectAPI = (*ConnectClient)(nil)

// Client returns the connect-sdk-go client. Printing it with fmt shows its
// token.
func (c *ConnectClient) Client() connect.Client { return *c.c }

// GetVaultByUUID implements [ConnectAPI].
func (c *ConnectClient) GetVaultByUUID(uuid string) (*op.Vault, error) {
	return (*c.c).GetVaultByUUID(uuid)
}

// GetVaultsByTitle implements [ConnectAPI].
func (c *ConnectClient) GetVaultsByTitle(title string) ([]op.Vault, error) {
	return (*c.c).GetVaultsByTitle(title)
}

// GetItemByUUID implements [ConnectAPI].
func (c *ConnectClient) GetItemByUUID(uuid, vaultQuery string) (*op.Item, error) {
	return (*c.c).GetItemByUUID(uuid, vaultQuery)
}

// GetItemsByTitle implements [ConnectAPI].
func (c *ConnectClient) GetItemsByTitle(title, vaultQuery string) ([]op.Item, error) {
	return (*c.c).GetItemsByTitle(title, vaultQuery)
}

// String describes the client without its token.
func (c ConnectClient) String() string {
	return "onepassword.ConnectClient(token " + c.token.String() + ")"
}

// Format prints the client as [ConnectClient.String] does, whatever the
// verb.
func (c ConnectClient) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

var tracerOnce sync.Once

// NewConnectClient returns a connect-sdk-go client of the Connect server at
// host (an http or https URL) authenticating with token, identifying itself
// as keyprovider, wrapped in a [ConnectClient] that carries the token for
// [NewConnect]. Its errors quote neither the token nor the host's userinfo.
//
// connect-sdk-go starts a Jaeger tracer, with goroutines reporting to
// localhost, when the process has no global OpenTracing tracer; to keep a
// library from doing that, NewConnectClient first registers OpenTracing's
// no-op tracer as the global one, if none is registered.
func NewConnectClient(host, token string) (*ConnectClient, error) {
	host = strings.TrimRight(strings.TrimSpace(host), "/")
	u, err := url.Parse(host)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// url.Parse's message quotes the text; the text may hold
		// credentials (user:password@), so it is scrubbed where it is
		// reported.
		return nil, fmt.Errorf("%w: Connect host %q is not an http:// or https:// URL", errConfig, redact.String(host, token))
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: Connect host %s carries user information; the token goes in OP_CONNECT_TOKEN", errConfig, u.Redacted())
	}
	if strings.TrimSpace(token) == "" {
		return nil, fmt.Errorf("%w: empty Connect token", errConfig)
	}
	tracerOnce.Do(func() {
		if !opentracing.IsGlobalTracerRegistered() {
			opentracing.SetGlobalTracer(opentracing.NoopTracer{})
		}
	})
	ua := fmt.Sprintf("keyprovider/%s connect-sdk-go/%s", moduleVersion(), connect.SDKVersion)
	token = strings.TrimSpace(token)
	client := connect.NewClientWithUserAgent(host, token, ua)
	return &ConnectClient{c: &client, token: redact.NewSecret(token)}, nil
}

// moduleVersion is this module's version, from the build information, or
// "devel" when the build has none (tests, a replaced module). It is used as
// the SDK's integration version, which allows no parentheses.
func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := ""
		if bi.Main.Path == "github.com/keyprovider/keyprovider" {
			v = bi.Main.Version
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/keyprovider/keyprovider" {
				v = d.Version
			}
		}
		if v != "" && v != "(devel)" {
			return v
		}
	}
	return "devel"
}

// connectBackend reads references through the Connect API. It remembers the
// IDs of the vault and item it found, so that a refresh costs one request.
type connectBackend struct {
	c ConnectAPI

	// ids is behind a pointer so that printing a Provider by reflection
	// reads nothing a Fetch writes.
	ids *connectIDs
}

// connectIDs are the IDs a connectBackend found.
type connectIDs struct {
	mu              sync.Mutex
	vaultID, itemID string
}

func (b *connectBackend) mode() string { return "connect" }

// supports reports whether Connect mode can serve r: it reads field values
// only, not the SDK's computed attributes (otp, type...).
func (b *connectBackend) supports(r reference) error {
	if r.attribute != "" {
		return fmt.Errorf("attribute %q: in Connect mode a reference reads a field's value only", r.attribute)
	}
	return nil
}

// idPattern is what 1Password IDs look like; connect-sdk-go tells IDs from
// names the same way.
var idPattern = regexp.MustCompile(`^[a-z0-9]{26}$`)

func (b *connectBackend) read(_ context.Context, _ string, r reference) (string, string, error, error) {
	b.ids.mu.Lock()
	vaultID, itemID := b.ids.vaultID, b.ids.itemID
	b.ids.mu.Unlock()
	if itemID != "" {
		item, err := b.c.GetItemByUUID(itemID, vaultID)
		switch {
		case err == nil:
			return pickField(item, r)
		case err != nil && !isNotFound(err):
			return "", "", classifyConnect(err), err
		}
		// Deleted or moved: look the names up again.
		b.remember("", "")
	}
	vaultID, err := b.findVault(r.vault)
	if err != nil {
		return "", "", classifyConnect(err), err
	}
	item, err := b.findItem(vaultID, r.item)
	if err != nil {
		return "", "", classifyConnect(err), err
	}
	b.remember(vaultID, item.ID)
	return pickField(item, r)
}

func (b *connectBackend) remember(vaultID, itemID string) {
	b.ids.mu.Lock()
	b.ids.vaultID, b.ids.itemID = vaultID, itemID
	b.ids.mu.Unlock()
}

// notFoundError is the cause of a name that matches nothing.
type notFoundError struct{ what, name string }

func (e *notFoundError) Error() string { return fmt.Sprintf("no %s matches %q", e.what, e.name) }
func (e *notFoundError) Unwrap() error { return keyprovider.ErrNotFound }

func (b *connectBackend) findVault(q string) (string, error) {
	if idPattern.MatchString(q) {
		v, err := b.c.GetVaultByUUID(q)
		if err == nil {
			return v.ID, nil
		}
		if !isNotFound(err) {
			return "", err
		}
	}
	vs, err := b.c.GetVaultsByTitle(q)
	if err != nil {
		return "", err
	}
	v, err := one("vault", q, vs)
	return v.ID, err
}

func (b *connectBackend) findItem(vaultID, q string) (*op.Item, error) {
	if idPattern.MatchString(q) {
		item, err := b.c.GetItemByUUID(q, vaultID)
		if err == nil {
			return item, nil
		}
		if !isNotFound(err) {
			return nil, err
		}
	}
	items, err := b.c.GetItemsByTitle(q, vaultID)
	if err != nil {
		return nil, err
	}
	it, err := one("item", q, items)
	return &it, err
}

// pickField returns the value of the field r names in item, and the item's
// version.
func pickField(item *op.Item, r reference) (string, string, error, error) {
	fields := item.Fields
	if r.section != "" {
		sec, err := one("section", r.section, byIDOrLabel(item.Sections, r.section,
			func(s *op.ItemSection) (string, string) { return s.ID, s.Label }))
		if err != nil {
			return "", "", classifyConnect(err), err
		}
		fields = slices.DeleteFunc(slices.Clone(fields), func(f *op.ItemField) bool {
			return f == nil || f.Section == nil || f.Section.ID != sec.ID
		})
	}
	f, err := one("field", r.field, byIDOrLabel(fields, r.field,
		func(f *op.ItemField) (string, string) { return f.ID, f.Label }))
	if err != nil {
		return "", "", classifyConnect(err), err
	}
	return f.Value, strconv.Itoa(item.Version), nil, nil
}

// byIDOrLabel returns the elements of xs whose ID is q or, if there are
// none, those whose label is q, ignoring case: an ID is exact, a label is
// what a person typed.
func byIDOrLabel[T any](xs []*T, q string, idLabel func(*T) (id, label string)) []*T {
	var byID, byLabel []*T
	for _, x := range xs {
		if x == nil {
			continue
		}
		id, label := idLabel(x)
		if id == q {
			byID = append(byID, x)
		} else if strings.EqualFold(label, q) {
			byLabel = append(byLabel, x)
		}
	}
	if len(byID) > 0 {
		return byID
	}
	return byLabel
}

// one returns the only element of matches, or the error of a name q that
// matched no or several things of the kind what: never a guess.
func one[T any](what, q string, matches []T) (T, error) {
	var zero T
	switch len(matches) {
	case 0:
		return zero, &notFoundError{what, q}
	case 1:
		return matches[0], nil
	}
	return zero, &AmbiguousError{What: what, Name: q, Count: len(matches)}
}

func isNotFound(err error) bool {
	var e *op.Error
	return errors.As(err, &e) && e.StatusCode == 404
}

// classifyConnect maps an error of connect-sdk-go onto a keyprovider
// sentinel: by the HTTP status of an API error, else (network failures,
// undecodable answers) ErrUnavailable.
func classifyConnect(err error) error {
	var nf *notFoundError
	var amb *AmbiguousError
	if errors.As(err, &nf) || errors.As(err, &amb) {
		return keyprovider.ErrNotFound
	}
	var e *op.Error
	if !errors.As(err, &e) {
		return keyprovider.ErrUnavailable
	}
	switch {
	case e.StatusCode == 401 || e.StatusCode == 403:
		return keyprovider.ErrPermission
	case e.StatusCode == 404:
		return keyprovider.ErrNotFound
	case e.StatusCode == 400:
		return keyprovider.ErrInvalidKey
	}
	return keyprovider.ErrUnavailable
}
