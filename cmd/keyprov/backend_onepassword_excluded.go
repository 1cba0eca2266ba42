//go:build keyprov_no_onepassword

package main

func init() { excludeBackend("op", "keyprov_no_onepassword") }
