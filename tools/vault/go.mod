// Module tools/vault builds the HashiCorp Vault server binary that the vault
// package's tests run as a real dev server. It is a module of its own so that
// Vault's large dependency graph never enters the library's go.mod.
module github.com/keyprovider/keyprovider/tools/vault

go 1.25

require github.com/hashicorp/vault v1.21.0

// Vault's own go.mod replaces its sdk with a local copy that matches no newer
// tag; v0.20.0 is the tagged sdk that v1.21.0 compiles with.
replace github.com/hashicorp/vault/sdk => github.com/hashicorp/vault/sdk v0.20.0

// The two replaces Vault's go.mod carries; replaces of a dependency are not
// inherited, so they are repeated here.
replace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3

replace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1
