//go:build unix

package filelock

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// WaitUnlocked blocks until no exclusive lock is held on f's file, then
// returns holding nothing: it takes a shared flock, waiting for it, and
// drops it. The wait ends the instant the holder releases the lock or
// dies, on every Unix, which makes the lock itself a wake-up where no
// file events are to be had. It cannot be cancelled: a caller that gives
// up lets it finish (see internal/watch).
func WaitUnlocked(f *os.File) error {
	if err := onFd(f, func(fd int) error { return unix.Flock(fd, unix.LOCK_SH) }); err != nil {
		return &fs.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
	return onFd(f, func(fd int) error { return unix.Flock(fd, unix.LOCK_UN) })
}
