//go:build unix && !linux

package filelock

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// lockShared takes a shared flock on f, waiting for it: it is only ever
// held exclusively for the instant of an AnyWaiting check.
func lockShared(f *os.File) error {
	return flockFile(f, unix.LOCK_SH)
}

// unlock drops f's flock.
func unlock(f *os.File) error {
	return flockFile(f, unix.LOCK_UN)
}

func flockFile(f *os.File, how int) error {
	if err := onFd(f, func(fd int) error { return unix.Flock(fd, how) }); err != nil {
		return &fs.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
	return nil
}
