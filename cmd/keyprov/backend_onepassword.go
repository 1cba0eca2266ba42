//go:build !keyprov_no_onepassword

package main

// Importing onepassword links op:// references in: the package registers
// its scheme in init. -tags keyprov_no_onepassword leaves it out, and with
// it the 1Password SDK (wazero and its WebAssembly core) and the Connect
// SDK.
import _ "github.com/keyprovider/keyprovider/onepassword"
