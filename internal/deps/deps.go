//go:build deps

// Package deps pins the library's dependencies while the packages that use
// them are being written. It is removed once every import is real.
package deps

import (
	_ "github.com/1Password/connect-sdk-go/connect"
	_ "github.com/1password/onepassword-sdk-go"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	_ "github.com/hashicorp/vault/api"
	_ "github.com/hashicorp/vault/api/auth/approle"
	_ "github.com/hashicorp/vault/api/auth/kubernetes"
	_ "github.com/stretchr/testify/require"
	_ "go.uber.org/goleak"
	_ "golang.org/x/sync/singleflight"
)
