//go:build unix

package proc

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Alive reports whether a process with this pid exists. kill(pid, 0) fails
// with EPERM for a live process we may not signal: only ESRCH means gone
// (the reference took any failure for death, freeing live holders' slots).
func Alive(pid int) bool {
	if pid <= 0 {
		return false // 0 and negatives would address process groups
	}
	err := unix.Kill(pid, 0)
	return !errors.Is(err, unix.ESRCH)
}
