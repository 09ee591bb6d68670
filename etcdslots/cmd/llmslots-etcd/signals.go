package main

import (
	"os"
	"syscall"
)

// forwarded are the signals run passes on to its command, as "llmslots
// run" does. Where a signal cannot be delivered (Windows), forwarding it
// fails harmlessly.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// signalNumber returns s's number, for the 128+N exit status.
func signalNumber(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return int(n)
	}
	return 0
}

// forwardSignal reports whether run passes s on: SIGINT only when stdin is
// not a terminal, since Ctrl-C on a terminal reaches the command itself.
func forwardSignal(s os.Signal) bool {
	return s != syscall.SIGINT || !isTerminal(os.Stdin)
}

// isTerminal reports whether f is a terminal: a character device other
// than the null device.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
