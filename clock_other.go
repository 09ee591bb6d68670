//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package llmslots

import "time"

// monotonicNow falls back to the wall clock, which orders arrivals well
// unless it is set back while processes wait.
func monotonicNow() int64 { return time.Now().UnixNano() }
