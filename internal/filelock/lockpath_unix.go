//go:build unix

package filelock

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// A PathLock is an exclusive lock taken by TryLockPath, on the open file
// it keeps.
type PathLock struct{ f *os.File }

// TryLockPath opens path (flag: os.O_RDONLY or os.O_RDWR; never following
// a link, never waiting on a FIFO) and tries its exclusive lock, as
// TryLock does. It returns the lock when taken; nil, false, nil when
// another holds it, the file closed again.
//
// The file is opened with a bare open(2) and becomes an *os.File only
// once locked: a probe mostly meets a held file, and os.OpenFile would
// first ask Go's poller to take the descriptor, a system call that fails
// for every regular file.
func TryLockPath(path string, flag int) (lk *PathLock, locked bool, err error) {
	var fd int
	for {
		fd, err = unix.Open(path, flag|NoFollow|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, false, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	switch {
	case err == nil:
		return &PathLock{os.NewFile(uintptr(fd), path)}, true, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		unix.Close(fd)
		return nil, false, nil
	}
	unix.Close(fd)
	return nil, false, &fs.PathError{Op: "flock", Path: path, Err: err}
}

// Stat describes the locked file.
func (l *PathLock) Stat() (fs.FileInfo, error) { return l.f.Stat() }

// Unlock drops the lock: its file is closed.
func (l *PathLock) Unlock() { l.f.Close() }

// RemoveLocked deletes path, whose lock lk holds, then drops the lock:
// deleting first means nobody can lock the file between.
func RemoveLocked(path string, lk *PathLock) error {
	err := os.Remove(path)
	lk.Unlock()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
