//go:build !(linux || darwin || freebsd)

package main

// roomIn cannot tell the free space here.
func roomIn(dir string) (int64, bool) { return 0, false }
