//go:build !keyprov_no_awssm

package main

import (
	"github.com/keyprovider/keyprovider"
	// Importing awssm links awssm:// references in: the package registers
	// its scheme in init. -tags keyprov_no_awssm leaves it, and the AWS
	// SDK, out (see backend_awssm_excluded.go).
	"github.com/keyprovider/keyprovider/awssm"
)

// awssmRequestToken is the ClientRequestToken awssm's Stage sends, for
// rotate's plan.
func awssmRequestToken(next keyprovider.Key, currentVersion string) string {
	return awssm.RequestToken(next, currentVersion)
}
