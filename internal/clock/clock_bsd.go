//go:build darwin || freebsd || openbsd || netbsd || dragonfly

package clock

import "time"

// Monotonic reads the machine-wide monotonic clock, which every process
// on the host shares and no one can set: it orders arrivals in the queue.
//
// It reads the clock afresh each time: Go's own monotonic clock is not
// CLOCK_MONOTONIC here (on macOS it is mach_absolute_time, which stops
// while the machine sleeps), so an offset taken once would drift.
func Monotonic() int64 {
	if ns, ok := hostMonotonic(); ok {
		return ns
	}
	return time.Now().UnixNano()
}
