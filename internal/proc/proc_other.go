//go:build !linux

package proc

// StartTime is unknown here; liveness then rests on the pid alone.
func StartTime(pid int) string { return "" }

// Namespace is unknown here.
func Namespace() string { return "" }

// IsAncestor cannot tell here: false, so a process that lost its
// inherited descriptor waits as any other would.
func IsAncestor(pid int) bool { return false }
