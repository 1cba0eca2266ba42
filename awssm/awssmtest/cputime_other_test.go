//go:build !unix

package awssmtest_test

import "time"

// cpuTime is unknown here; the per-CPU-second metric is then left out.
func cpuTime() time.Duration { return 0 }
