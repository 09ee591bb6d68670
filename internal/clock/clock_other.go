//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package clock

import "time"

// Monotonic falls back to the wall clock, which orders arrivals well
// unless it is set back while processes wait.
func Monotonic() int64 { return time.Now().UnixNano() }
