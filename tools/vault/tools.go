//go:build tools

// Package tools pins the Vault server as a build dependency of this module.
package tools

import _ "github.com/hashicorp/vault"
