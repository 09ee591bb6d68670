//go:build !linux

package proc

// StartTime is unknown here; liveness then rests on the pid alone.
func StartTime(pid int) string { return "" }

// Namespace is unknown here.
func Namespace() string { return "" }

// IsAncestor cannot tell here: false (one that lost its descriptor waits).
func IsAncestor(pid int) bool { return false }
