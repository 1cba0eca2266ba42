//go:build !keyprov_no_vault

package main

// Importing vault links vault:// references in: the package registers its
// scheme in init. -tags keyprov_no_vault leaves it out, and with it the
// Vault API client.
import _ "github.com/keyprovider/keyprovider/vault"
