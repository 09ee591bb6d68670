package main

import (
	"os"
	"syscall"
)

// forwarded are the signals run passes on to its command. The syscall
// constants exist on every platform; where a signal cannot be delivered
// (Windows), forwarding it fails harmlessly.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// signalNumber returns s's number, for the 128+N exit status.
func signalNumber(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return int(n)
	}
	return 0
}

// forwardSignal reports whether run should pass s on to its command.
//
// Ctrl-C on a terminal sends SIGINT to the whole foreground process group,
// the command included; forwarding it too would deliver it twice, and some
// programs (interactive agents among them) take a second Ctrl-C as "quit
// now". So SIGINT is forwarded only when stdin is not a terminal, which is
// when it comes from kill(1), a parent or a harness's timeout.
func forwardSignal(s os.Signal) bool {
	return s != syscall.SIGINT || !isTerminal(os.Stdin)
}

// isTerminal reports whether f is a terminal: a character device other
// than the null device (the standard library has no isatty; this is
// enough to choose between a live line and plain log lines).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
