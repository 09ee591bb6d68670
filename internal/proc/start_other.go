//go:build !linux

package proc

// StartTime is unknown here; liveness then rests on the pid alone.
func StartTime(pid int) string { return "" }

// Namespace is unknown here.
func Namespace() string { return "" }

// Stopped is false: only Linux's /proc tells.
func Stopped(pid int) bool { return false }
