//go:build !race

package main

// raceEnabled reports whether this test binary is built with the race
// detector, which multiplies what its own processes cost.
const raceEnabled = false
