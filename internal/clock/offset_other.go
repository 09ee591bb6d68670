//go:build !linux

package clock

// nsOffset is 0: only Linux has time namespaces.
func nsOffset() int64 { return 0 }
