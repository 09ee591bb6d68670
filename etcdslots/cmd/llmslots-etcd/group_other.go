//go:build !unix

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// ownGroup: there are no process groups to start the command in here
// (Windows): stopping the command stops only it, not what it started.
func ownGroup(*exec.Cmd) (lent bool) { return false }

// takeBack and suspend are not called: no terminal is lent here.
func takeBack()           {}
func suspend(*os.Process) {}

// signalGroup signals the command alone (Windows takes only SIGKILL).
func signalGroup(p *os.Process, sig syscall.Signal) error { return p.Signal(sig) }

// groupGone: the command alone is its group, gone once it has exited.
func groupGone(*os.Process) bool { return true }
