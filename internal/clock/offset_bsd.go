//go:build darwin || freebsd || openbsd || netbsd || dragonfly

package clock

// nsOffset is 0: these systems have no time namespaces.
func nsOffset() int64 { return 0 }
