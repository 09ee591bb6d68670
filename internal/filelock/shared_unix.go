//go:build unix && !linux

package filelock

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// tryLockShared takes a shared flock on f without waiting; false when
// an exclusive one is in the way.
func tryLockShared(f *os.File) (bool, error) {
	err := flockFile(f, unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
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
