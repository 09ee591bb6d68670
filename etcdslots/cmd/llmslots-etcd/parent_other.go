//go:build !linux

package main

import "os/exec"

// stopWithParent: only Linux can have a child signalled when its parent
// dies; elsewhere CMD outlives a killed run, and its slot frees within the
// TTL.
func stopWithParent(*exec.Cmd) {}
