//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package clock

import "golang.org/x/sys/unix"

// hostMonotonic reads CLOCK_MONOTONIC with a system call and takes a
// Linux time namespace's offset out, so that the reading is the host's.
func hostMonotonic() (int64, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(clockMonotonic, &ts); err != nil {
		return 0, false
	}
	return ts.Nano() - nsOffset(), true
}
