//go:build keyprov_no_awssm

package main

import "github.com/keyprovider/keyprovider"

func init() { excludedBackends["awssm"] = "keyprov_no_awssm" }

// awssmRequestToken stands in for the awssm package's RequestToken in a
// keyprov built without awssm. It is never called: rotate plans an awssm
// stage only for a key it has resolved through an awssm:// reference, and
// in this build resolving one fails first, with
// [keyprovider.ErrSchemeNotLinked].
func awssmRequestToken(keyprovider.Key, string) string { return "" }
