package onepasswordtest

import (
	"fmt"

	op "github.com/1Password/connect-sdk-go/onepassword"
)

// AddVault creates a vault named name and returns its ID. Names need not be
// unique.
func (s *Server) AddVault(name string) string {
	id := NewID()
	_ = s.AddVaultWithID(id, name) // a new random ID is free
	return id
}

// AddVaultWithID creates a vault with a chosen ID (26 lower-case letters and
// digits, not taken), for seeds that fix their IDs.
func (s *Server) AddVaultWithID(id, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !validID(id) || s.vault(id) != nil {
		return fmt.Errorf("onepasswordtest: vault ID %q is malformed or taken", id)
	}
	now := s.clock().UTC()
	s.vaults = append(s.vaults, &vault{v: op.Vault{ID: id, Name: name, Type: op.UserCreatedVault,
		AttrVersion: 1, ContentVersion: 1, CreatedAt: now, UpdatedAt: now}})
	return nil
}

// CreateItem creates item in the vault, at version 1, with its ID when it
// has one (which must be well formed and not taken in the vault), a new one
// otherwise; it returns what was stored.
func (s *Server) CreateItem(vaultID string, item op.Item) (op.Item, error) {
	if item.ID == "" {
		return s.PutItem(vaultID, item)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vault(vaultID)
	if v == nil {
		return op.Item{}, fmt.Errorf("onepasswordtest: no vault %s", vaultID)
	}
	if !validID(item.ID) || s.item(vaultID, item.ID) != nil {
		return op.Item{}, fmt.Errorf("onepasswordtest: item ID %q is malformed or taken", item.ID)
	}
	now := s.clock().UTC()
	item.Vault, item.Version, item.CreatedAt, item.UpdatedAt = op.ItemVault{ID: vaultID}, 1, now, now
	v.items = append(v.items, copyItem(&item))
	s.changed(v)
	return *copyItem(&item), nil
}

// changed records a change of v's content: its content version goes up and
// its updatedAt moves. s.mu is held.
func (s *Server) changed(v *vault) {
	v.v.ContentVersion++
	v.v.UpdatedAt = s.clock().UTC()
}

// PutItem stores item in the vault and returns what was stored. An item
// without an ID is created (with a new ID, at version 1, createdAt and
// updatedAt now); one with the ID of an existing item replaces it, one
// version up, keeping its createdAt. Fields and sections are kept as given.
func (s *Server) PutItem(vaultID string, item op.Item) (op.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vault(vaultID)
	if v == nil {
		return op.Item{}, fmt.Errorf("onepasswordtest: no vault %s", vaultID)
	}
	now := s.clock().UTC()
	item.Vault = op.ItemVault{ID: vaultID}
	item.UpdatedAt = now
	if item.ID == "" {
		item.ID, item.Version, item.CreatedAt = NewID(), 1, now
		stored := copyItem(&item)
		v.items = append(v.items, stored)
		s.changed(v)
		return *copyItem(stored), nil
	}
	for i, old := range v.items {
		if old.ID == item.ID {
			item.Version, item.CreatedAt = old.Version+1, old.CreatedAt
			v.items[i] = copyItem(&item)
			s.changed(v)
			return *copyItem(v.items[i]), nil
		}
	}
	return op.Item{}, fmt.Errorf("onepasswordtest: no item %s in vault %s", item.ID, vaultID)
}

// SetField sets the value of the item's field with the label or ID field (in
// any section), one item version up: a rotation.
func (s *Server) SetField(vaultID, itemID, field, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.item(vaultID, itemID)
	if it == nil {
		return fmt.Errorf("onepasswordtest: no item %s in vault %s", itemID, vaultID)
	}
	for _, f := range it.Fields {
		if f.ID == field || f.Label == field {
			f.Value = value
			it.Version++
			it.UpdatedAt = s.clock().UTC()
			s.changed(s.vault(vaultID))
			return nil
		}
	}
	return fmt.Errorf("onepasswordtest: item %s has no field %q", itemID, field)
}

// DeleteItem deletes an item.
func (s *Server) DeleteItem(vaultID, itemID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vault(vaultID)
	if v == nil {
		return fmt.Errorf("onepasswordtest: no vault %s", vaultID)
	}
	for i, it := range v.items {
		if it.ID == itemID {
			v.items = append(v.items[:i], v.items[i+1:]...)
			s.changed(v)
			return nil
		}
	}
	return fmt.Errorf("onepasswordtest: no item %s in vault %s", itemID, vaultID)
}

// Deny takes the token's access to a vault away (or gives it back): the vault
// disappears from listings and its endpoints answer 403.
func (s *Server) Deny(vaultID string, denied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[vaultID] = denied
}

// RevokeToken makes every request answer 401, as for a revoked token.
func (s *Server) RevokeToken() { s.setRevoked(true) }

func (s *Server) setRevoked(revoked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = revoked
}

// FailNext answers the next requests with faults, one each, in order.
func (s *Server) FailNext(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

// FailAll answers every request with f until [Server.Heal].
func (s *Server) FailAll(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sticky = &f
}

// Heal clears the faults of FailNext and FailAll.
func (s *Server) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults, s.sticky = nil, nil
}

// Requests returns how many requests of route (RouteGetItem...) the server
// received, faults and refusals included; route "" counts them all.
func (s *Server) Requests(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if route == "" {
		n := 0
		for _, c := range s.requests {
			n += c
		}
		return n
	}
	return s.requests[route]
}

func (s *Server) vault(id string) *vault {
	for _, v := range s.vaults {
		if v.v.ID == id {
			return v
		}
	}
	return nil
}

func (s *Server) item(vaultID, itemID string) *op.Item {
	if v := s.vault(vaultID); v != nil {
		for _, it := range v.items {
			if it.ID == itemID {
				return it
			}
		}
	}
	return nil
}

func copyItem(it *op.Item) *op.Item {
	c := *it
	c.Sections = make([]*op.ItemSection, len(it.Sections))
	for i, s := range it.Sections {
		sc := *s
		c.Sections[i] = &sc
	}
	c.Fields = make([]*op.ItemField, len(it.Fields))
	for i, f := range it.Fields {
		fc := *f
		if f.Section != nil {
			sc := *f.Section
			fc.Section = &sc
		}
		c.Fields[i] = &fc
	}
	return &c
}
