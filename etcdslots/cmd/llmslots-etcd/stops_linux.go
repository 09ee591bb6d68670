package main

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// stops reports each time p is stopped by a signal. It waits for stops
// only (WSTOPPED, not WEXITED), so it reaps nothing: cmd.Wait still gets
// the exit, and this wait ends with ECHILD once it has.
func stops(p *os.Process) <-chan struct{} {
	c := make(chan struct{}, 1)
	go func() {
		for {
			var info unix.Siginfo
			err := unix.Waitid(unix.P_PID, p.Pid, &info, unix.WSTOPPED, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil {
				return
			}
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}()
	return c
}
