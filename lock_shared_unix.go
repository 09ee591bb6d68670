//go:build unix && !linux

package llmslots

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Off Linux, waiters mark the queue with shared flocks (see
// waiters_other.go); Linux uses OFD record locks instead.

// lockShared takes a shared flock on f, waiting for it: it is only ever
// held exclusively for the instant of a waitersPresent check.
func lockShared(f *os.File) error {
	return flockFile(f, unix.LOCK_SH)
}

// unlockFile drops f's flock.
func unlockFile(f *os.File) error {
	return flockFile(f, unix.LOCK_UN)
}

func flockFile(f *os.File, how int) error {
	if err := onFd(f, func(fd int) error { return unix.Flock(fd, how) }); err != nil {
		return &fs.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
	return nil
}
