//go:build unix

package llmslots

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The root package's tests take over a minute, and `go test ./...` (the
// README's command) prints nothing of a package until it ends: it keeps a
// package's output, even stderr, and shows it only if the package fails.
// So TestMain tells the terminal itself, /dev/tty, which go test does not
// capture, that the tests are alive: a line every aliveEvery. Without a
// terminal (CI, cron) it says nothing.
const aliveEvery = 10 * time.Second

// sayAlive starts the lines; stop ends them.
func sayAlive(pkg string) (stop func()) {
	tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err != nil {
		return func() {}
	}
	start := time.Now()
	tick := time.NewTicker(aliveEvery)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				if foreground(tty) {
					fmt.Fprintf(tty, "%s: tests still running, %v so far\n", pkg, now.Sub(start).Round(time.Second))
				}
			}
		}
	}()
	return func() {
		tick.Stop()
		close(done)
		tty.Close()
	}
}

// foreground reports whether this process is in the terminal's foreground
// process group: written from the background (go test ./... &), the line
// would stop the tests if the terminal has tostop set.
func foreground(tty *os.File) bool {
	pgrp, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	mine, err2 := unix.Getpgid(0)
	return err == nil && err2 == nil && pgrp == mine
}
