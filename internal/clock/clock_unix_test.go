//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package clock

import (
	"testing"
	"time"
)

// Monotonic is the host's clock: a reading taken between two reads of
// CLOCK_MONOTONIC falls between them.
func TestMonotonicFollowsTheSystemClock(t *testing.T) {
	for i := range 1000 {
		before, _ := hostMonotonic()
		m := Monotonic()
		after, _ := hostMonotonic()
		if m < before || m > after {
			t.Fatalf("reading %d: %d, outside %d..%d", i, m, before, after)
		}
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}
