// Package cli holds what the llmslots command and the cluster's
// llmslots-etcd command share: exit statuses, which signals are passed on
// to the command they run, and how a command's end becomes an exit status.
package cli

import (
	"errors"
	"os"
	"syscall"
)

// Exit statuses, from sysexits.h where one fits, so shell scripts can tell
// "try later" from "you called me wrong".
const (
	ExitOK       = 0
	ExitError    = 1   // any other failure; one line on stderr says what
	ExitUsage    = 64  // EX_USAGE: bad flags or arguments
	ExitBusy     = 75  // EX_TEMPFAIL: no slot freed in time
	ExitNoExec   = 126 // the command was found but cannot be run (shell convention)
	ExitNotFound = 127 // the command was not found (shell convention)
)

// Forwarded are the signals run passes on to its command; where one cannot
// be delivered (Windows), forwarding it fails harmlessly.
var Forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// SignalNumber returns s's number, for the 128+N exit status.
func SignalNumber(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return int(n)
	}
	return 0
}

// ForwardSignal reports whether run should pass s on to its command. Ctrl-C
// on a terminal sends SIGINT to the whole foreground process group, the
// command included, and some programs take a second one as "quit now": so
// SIGINT is forwarded only when stdin is not a terminal, which is when it
// comes from kill(1), a parent or a harness's timeout.
func ForwardSignal(s os.Signal) bool {
	return s != syscall.SIGINT || !IsTerminal(os.Stdin)
}

// IsTerminal reports whether f is a terminal: a character device other
// than the null device (the standard library has no isatty).
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// ExitStatus is a process's exit code, or 128+N when signal N killed it.
func ExitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if code := ps.ExitCode(); code >= 0 {
		return code
	}
	return ExitError
}

// ExecFailureCode maps a failure to start a command to the shell's codes.
func ExecFailureCode(err error) int {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return ExitNotFound
	case errors.Is(err, os.ErrPermission):
		return ExitNoExec
	}
	return ExitError
}
