package onepassword

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	op "github.com/1Password/connect-sdk-go/onepassword"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
	"github.com/keyprovider/keyprovider/rotation"
)

var _ rotation.Writer = (*Provider)(nil)

// PreviousSuffix is appended to the label of the key's field to name the
// concealed field, in the same section, where [Provider.Promote] keeps the
// key it replaces: Connect serves no item history, so this is where the old
// key stays readable (op://VAULT/ITEM/api_key (previous)) until it is
// revoked.
const PreviousSuffix = " (previous)"

// ItemUpdater is the write call of the Connect API a Provider in Connect
// mode rotates through: connect-sdk-go's UpdateItem (a PUT of the whole
// item, carrying the version it was read at). A [*ConnectClient] has it
// through its client; any other [ConnectAPI] given to [NewConnect] needs it
// to write.
type ItemUpdater interface {
	UpdateItem(item *op.Item, vaultUUID string) (*op.Item, error)
}

// Errors of the write methods.
var (
	errReadOnly  = errors.New("the 1Password SDK's service-account mode is read-only here: rotate through Connect (OP_CONNECT_HOST, OP_CONNECT_TOKEN)")
	errNoUpdater = errors.New("the Connect client cannot update items (it has no UpdateItem)")
)

// connectWriter returns the Connect backend and its write call.
func (p *Provider) connectWriter() (*connectBackend, ItemUpdater, error) {
	b, ok := p.backend.(*connectBackend)
	if !ok {
		return nil, nil, p.fail(keyprovider.ErrInvalidKey, errReadOnly)
	}
	if cc, ok := b.c.(*ConnectClient); ok {
		return b, *cc.c, nil
	}
	if u, ok := b.c.(ItemUpdater); ok {
		return b, u, nil
	}
	return nil, nil, p.fail(keyprovider.ErrInvalidKey, errNoUpdater)
}

// Stage checks that next can replace current and writes nothing
// ([rotation.Deferred]): a Connect item has no version readers are not
// given, so [Provider.Promote] writes, after the caller verified the key.
// In SDK (service-account) mode it fails: that mode is read-only.
func (p *Provider) Stage(_ context.Context, current, next keyprovider.Key) (rotation.Staged, error) {
	if _, _, err := p.connectWriter(); err != nil {
		return rotation.Staged{}, err
	}
	if next.Equal(current) {
		return rotation.Staged{}, p.failWrite(next, keyprovider.ErrInvalidKey, rotation.ErrSameKey)
	}
	if _, err := p.opts.Service.ParseKey(next.Reveal(), ""); err != nil {
		return rotation.Staged{}, p.failWrite(next, keyprovider.ErrInvalidKey, err)
	}
	return rotation.Staged{Mode: rotation.Deferred, Current: current.Version(), Next: next, Previous: current}, nil
}

// Promote writes the new key into the item's field and the key it
// replaces into the field labelled with [PreviousSuffix] (added, concealed,
// when missing), in one update of the whole item at the version read. If
// the field no longer holds the key that was current (another writer
// rotated it), nothing is written and the error wraps [rotation.ErrConflict].
// A 409 from Connect (the item changed between the read and the write) is
// retried once after reading the item again, then is ErrConflict.
//
// connect-sdk-go takes no context: each call runs on a goroutine the
// Provider tracks as it tracks a Fetch's ([Provider.Close] waits for it),
// and Promote stops waiting when ctx ends. An update still running then
// may land later: the error says so (errWriteUnknown), so that the caller
// checks what the item holds before starting over.
func (p *Provider) Promote(ctx context.Context, s rotation.Staged) (keyprovider.Key, error) {
	b, u, err := p.connectWriter()
	if err != nil {
		return keyprovider.Key{}, err
	}
	var last error
	for attempt := 0; attempt < 2; attempt++ {
		if _, err := p.Fetch(ctx); err != nil { // finds, and remembers, the item's IDs
			return keyprovider.Key{}, err
		}
		b.ids.mu.Lock()
		vaultID, itemID := b.ids.vaultID, b.ids.itemID
		b.ids.mu.Unlock()
		item, err := bounded(ctx, p, func() (*op.Item, error) { return b.c.GetItemByUUID(itemID, vaultID) })
		if err != nil {
			return keyprovider.Key{}, p.failWrite(s.Next, classifyConnect(err), err)
		}
		if err := p.setKey(item, s); err != nil {
			return keyprovider.Key{}, err
		}
		if err := ctx.Err(); err != nil {
			return keyprovider.Key{}, p.failWrite(s.Next, nil, err)
		}
		out, err := bounded(ctx, p, func() (*op.Item, error) { return u.UpdateItem(item, vaultID) })
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return keyprovider.Key{}, p.failWrite(s.Next, nil, fmt.Errorf("%w: %w", err, errWriteUnknown))
		}
		if err == nil {
			return keyprovider.NewKey(s.Next.Reveal(), strconv.Itoa(out.Version)), nil
		}
		if !isConflict(err) {
			return keyprovider.Key{}, p.failWrite(s.Next, classifyConnect(err), err)
		}
		last = err
	}
	return keyprovider.Key{}, p.failWrite(s.Next, rotation.ErrConflict, fmt.Errorf("the item changed while it was written, twice: %w", last))
}

// setKey puts the new key and the previous one into item's fields.
func (p *Provider) setKey(item *op.Item, s rotation.Staged) error {
	field, err := p.keyField(item)
	if err != nil {
		return err
	}
	if field.Value != s.Previous.Reveal() {
		return p.failWrite(s.Next, rotation.ErrConflict, fmt.Errorf("the field no longer holds the key that was read (%s)", s.Previous.Fingerprint()))
	}
	label := field.Label + PreviousSuffix
	i := slices.IndexFunc(item.Fields, func(f *op.ItemField) bool {
		return f != nil && f.Label == label && sameSection(f.Section, field.Section)
	})
	if i < 0 {
		item.Fields = append(item.Fields, &op.ItemField{Label: label, Type: op.FieldTypeConcealed, Section: field.Section})
		i = len(item.Fields) - 1
	}
	item.Fields[i].Value = field.Value
	field.Value = s.Next.Reveal()
	return nil
}

// keyField is the field of item the reference names, as pickField finds it.
func (p *Provider) keyField(item *op.Item) (*op.ItemField, error) {
	r := p.parsed
	fields := item.Fields
	if r.section != "" {
		sec, err := one("section", r.section, byIDOrLabel(item.Sections, r.section,
			func(s *op.ItemSection) (string, string) { return s.ID, s.Label }))
		if err != nil {
			return nil, p.fail(classifyConnect(err), err)
		}
		fields = slices.DeleteFunc(slices.Clone(fields), func(f *op.ItemField) bool {
			return f == nil || f.Section == nil || f.Section.ID != sec.ID
		})
	}
	f, err := one("field", r.field, byIDOrLabel(fields, r.field,
		func(f *op.ItemField) (string, string) { return f.ID, f.Label }))
	if err != nil {
		return nil, p.fail(classifyConnect(err), err)
	}
	return f, nil
}

func sameSection(a, b *op.ItemSection) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ID == b.ID
}

// isConflict reports whether err is Connect's 409.
func isConflict(err error) bool {
	var e *op.Error
	return errors.As(err, &e) && e.StatusCode == http.StatusConflict
}

// Abandon has nothing to undo: Stage wrote nothing.
func (p *Provider) Abandon(context.Context, rotation.Staged) (string, error) {
	return "nothing was written to 1Password (the item is updated only on promotion)", nil
}

// failWrite is fail for the write methods: the new key is scrubbed too.
func (p *Provider) failWrite(next keyprovider.Key, kind, err error) error {
	return newError(p.ref, kind, redact.Error(err, next.Reveal()), p.creds...)
}

// errWriteUnknown is the cause of a Promote whose update was still running
// when its context ended.
var errWriteUnknown = errors.New("the item update did not answer in time: it may still be applied; read the item before starting over")

// bounded runs fn, a call of connect-sdk-go (which takes no context), on a
// goroutine holding the Provider's inflight token, as call does for
// Fetch, and waits for it on ctx.
func bounded(ctx context.Context, p *Provider, fn func() (*op.Item, error)) (*op.Item, error) {
	select {
	case p.life.inflight <- struct{}{}:
	case <-p.life.closing:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	type answer struct {
		item *op.Item
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		defer func() { <-p.life.inflight }()
		defer func() {
			if recover() != nil {
				done <- answer{err: errPanic}
			}
		}()
		it, err := fn()
		done <- answer{it, err}
	}()
	select {
	case a := <-done:
		return a.item, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
