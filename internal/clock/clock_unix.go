//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package clock

import (
	"time"

	"golang.org/x/sys/unix"
)

// Monotonic reads the machine-wide monotonic clock, which every process
// on the host shares and no one can set: it orders arrivals in the queue.
// In a Linux time namespace the namespace's offset is taken out, so that
// the reading is the host's.
func Monotonic() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(clockMonotonic, &ts); err != nil {
		return time.Now().UnixNano()
	}
	return ts.Nano() - nsOffset()
}
