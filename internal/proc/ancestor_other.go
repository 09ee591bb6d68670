//go:build !linux

package proc

// HeldByAncestor cannot tell here (no /proc/locks): false, so a process
// that lost its inherited descriptor waits as any other would.
func HeldByAncestor(path string) bool { return false }
