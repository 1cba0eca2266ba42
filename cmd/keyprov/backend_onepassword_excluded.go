//go:build keyprov_no_onepassword

package main

func init() { excludedBackends["op"] = "keyprov_no_onepassword" }
