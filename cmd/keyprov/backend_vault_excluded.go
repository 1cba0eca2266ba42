//go:build keyprov_no_vault

package main

func init() { excludedBackends["vault"] = "keyprov_no_vault" }
