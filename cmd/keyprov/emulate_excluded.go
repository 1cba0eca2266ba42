//go:build keyprov_no_awssm || keyprov_no_onepassword

package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// runEmulate stands in for keyprov emulate in a keyprov built without awssm
// or without onepassword. The emulators link what those tags leave out:
// package awssmtest the AWS SDK's Secrets Manager client, package
// onepasswordtest the onepassword package itself (which would register
// op:// again, with the 1Password and Connect SDKs), so emulate goes with
// them.
func runEmulate(_ context.Context, _ []string, _ lookupFunc, _, stderr io.Writer) int {
	var tags []string
	for _, scheme := range []string{"awssm", "op"} {
		if tag, ok := excludedBackends[scheme]; ok {
			tags = append(tags, tag)
		}
	}
	slices.Sort(tags)
	fmt.Fprintf(stderr, "keyprov emulate: not in this keyprov, built with -tags %s: the emulators link the awssm and onepassword backends; use a keyprov built with both\n",
		strings.Join(tags, ","))
	return exitUsage
}
