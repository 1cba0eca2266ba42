//go:build keyprov_no_vault

package main

func init() { excludeBackend("vault", "keyprov_no_vault") }
