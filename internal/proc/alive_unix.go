//go:build unix

package proc

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Alive reports whether a process with this pid exists. kill(pid, 0)
// fails with EPERM for a live process we may not signal (another user's,
// or one in another container): only ESRCH means it is gone. The reference
// took any failure for death and freed live holders' slots.
func Alive(pid int) bool {
	if pid <= 0 {
		return false // 0 and negatives would address process groups
	}
	err := unix.Kill(pid, 0)
	return !errors.Is(err, unix.ESRCH)
}
