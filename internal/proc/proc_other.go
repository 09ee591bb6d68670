//go:build !linux

package proc

// StartTime is unknown here; liveness then rests on the pid alone.
func StartTime(pid int) string { return "" }

// Namespace is unknown here.
func Namespace() string { return "" }

// HeldByAncestor cannot tell here (no /proc/locks): false, so a process
// that lost its inherited descriptor waits as any other would.
func HeldByAncestor(path string) bool { return false }
