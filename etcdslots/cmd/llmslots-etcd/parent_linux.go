package main

import (
	"os/exec"
	"syscall"
)

// stopWithParent has the kernel send CMD SIGTERM if run dies first (its
// lease then stops being renewed, so CMD would run on without a slot).
func stopWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}
