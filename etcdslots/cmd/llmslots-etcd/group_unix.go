//go:build unix

package main

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// ownGroup has cmd start in a process group of its own, so that stopping
// it reaches the processes it starts: `sh -c "child; true"` dies of SIGTERM
// at once while its child, which the slot covers as much, would run on
// beside the next holder's command (the reviewer logged that overlap).
//
// A process group that is not the terminal's foreground one gets SIGTTIN
// when it reads the terminal, and the terminal's Ctrl-C does not reach it.
// So when stdin is this process's controlling terminal and this process
// is in its foreground, the command's group is made the foreground group
// (as a shell does for a job): lent is true, and takeBack gives the
// terminal back to run's group.
func ownGroup(cmd *exec.Cmd) (lent bool) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP) // fails unless stdin is our terminal
	if err != nil || fg != syscall.Getpgrp() {
		return false
	}
	cmd.SysProcAttr.Foreground, cmd.SysProcAttr.Ctty = true, 0
	return true
}

// takeBack makes run's group the terminal's foreground group again.
func takeBack() {
	// A background process that sets the foreground group gets SIGTTOU,
	// which stops it, unless it ignores the signal.
	signal.Ignore(syscall.SIGTTOU)
	unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, syscall.Getpgrp())
	signal.Reset(syscall.SIGTTOU)
}

// suspend answers the command's stop on the terminal (Ctrl-Z, which
// reaches only the command's group, now the foreground one): without it,
// the shell would go on waiting for run, and the terminal stay with a
// stopped group. As sudo does, run takes the terminal back and stops its
// own group, so the shell sees the job stopped; once continued (fg or bg),
// it lends the terminal again if its group has it, and continues the
// command's group.
func suspend(p *os.Process) {
	takeBack()
	// The stop takes effect when a thread of run next enters the kernel,
	// not necessarily before kill returns: wait for the SIGCONT that ends
	// it, or run would lend the terminal again before the shell had it.
	cont := make(chan os.Signal, 1)
	signal.Notify(cont, syscall.SIGCONT)
	defer signal.Stop(cont)
	syscall.Kill(0, syscall.SIGTSTP)
	<-cont
	if fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil && fg == syscall.Getpgrp() {
		unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, p.Pid)
	}
	syscall.Kill(-p.Pid, syscall.SIGCONT)
}

// signalGroup sends sig to every process of the group p leads.
func signalGroup(p *os.Process, sig syscall.Signal) error {
	return syscall.Kill(-p.Pid, sig)
}

// groupGone reports whether no process of the group p led is left.
// A process that has exited but is not yet reaped (its parent, or init,
// has not waited for it) still counts.
func groupGone(p *os.Process) bool {
	return errors.Is(syscall.Kill(-p.Pid, 0), syscall.ESRCH)
}
