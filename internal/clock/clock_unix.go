//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package clock

import (
	"time"

	"golang.org/x/sys/unix"
)

// Monotonic reads the machine-wide monotonic clock, which every process on
// the host shares and no one can set (less a Linux time namespace's
// offset): it orders arrivals in the queue. It reads the clock afresh each
// call: Go's own monotonic clock is not CLOCK_MONOTONIC everywhere (on
// macOS it stops while the machine sleeps), so an offset from it drifts.
func Monotonic() int64 {
	if ns, ok := hostMonotonic(); ok {
		return ns
	}
	return time.Now().UnixNano()
}

// hostMonotonic reads CLOCK_MONOTONIC less the time namespace's offset.
func hostMonotonic() (int64, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(clockMonotonic, &ts); err != nil {
		return 0, false
	}
	return ts.Nano() - nsOffset(), true
}
