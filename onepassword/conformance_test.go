package onepassword_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest"
	"github.com/keyprovider/keyprovider/onepassword"
	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

// connectHarness drives one item of the Connect emulator: the first Set
// creates it, later ones rotate its field, Delete deletes it.
type connectHarness struct {
	srv             *onepasswordtest.Server
	vaultID, itemID string
}

func (h *connectHarness) Provider(context.Context) (keyprovider.Provider, error) {
	return onepassword.NewConnect(h.srv.Client(), "op://conformance/tessera/credential", onepassword.WithService(keyprovider.Tessera))
}

func (h *connectHarness) Set(_ context.Context, value string) error {
	if h.itemID == "" {
		it, err := h.srv.PutItem(h.vaultID, apiItem("tessera", value))
		h.itemID = it.ID
		return err
	}
	return h.srv.SetField(h.vaultID, h.itemID, "credential", value)
}

func (h *connectHarness) Delete(context.Context) error {
	if h.itemID == "" {
		return errors.New("nothing to delete")
	}
	err := h.srv.DeleteItem(h.vaultID, h.itemID)
	h.itemID = ""
	return err
}

func (h *connectHarness) Close() {}

// sdkHarness drives the fake of the SDK's Secrets API.
type sdkHarness struct{ r *onepasswordtest.Secrets }

const conformanceRef = "op://conformance/tessera/credential"

func (h *sdkHarness) Provider(context.Context) (keyprovider.Provider, error) {
	return onepassword.New(h.r, conformanceRef, onepassword.WithService(keyprovider.Tessera))
}

func (h *sdkHarness) Set(_ context.Context, value string) error {
	h.r.Set(conformanceRef, value)
	return nil
}

func (h *sdkHarness) Delete(context.Context) error {
	h.r.Delete(conformanceRef)
	return nil
}

func (h *sdkHarness) Close() {}

func TestConformance(t *testing.T) {
	t.Run("Connect", func(t *testing.T) {
		keyprovidertest.RunConformance(t, func(_ context.Context, t *testing.T) (keyprovidertest.Harness, error) {
			srv := onepasswordtest.NewServer(t)
			return &connectHarness{srv: srv, vaultID: srv.AddVault("conformance")}, nil
		})
	})
	t.Run("SDK", func(t *testing.T) {
		keyprovidertest.RunConformance(t, func(context.Context, *testing.T) (keyprovidertest.Harness, error) {
			return &sdkHarness{r: onepasswordtest.NewSecrets()}, nil
		})
	})
}
