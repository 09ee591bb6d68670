//go:build !linux

package main

import "os"

// stops: only Linux waits for a child's stops apart from its exit
// (waitid with WSTOPPED alone); elsewhere Ctrl-Z on a terminal stops the
// command but not run.
func stops(*os.Process) <-chan struct{} { return nil }
