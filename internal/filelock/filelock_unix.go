//go:build unix

package filelock

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// NoFollow is added to every open of a slot file: O_NOFOLLOW so that a
// symlink planted at a slot path is never followed, O_NONBLOCK so that a
// FIFO planted there cannot hang the open. Neither changes anything for the
// regular files the protocol makes.
const NoFollow = unix.O_NOFOLLOW | unix.O_NONBLOCK

// Open opens path read-write: with create, only if this call creates it
// (O_EXCL), mode 0600.
func Open(path string, create bool) (*os.File, error) {
	flag := os.O_RDWR | NoFollow
	if create {
		flag |= os.O_CREATE | os.O_EXCL
	}
	return os.OpenFile(path, flag, 0o600)
}

// TryLock takes an exclusive flock on f without blocking and reports
// whether it got it. flock, not fcntl: fcntl locks belong to the process
// and vanish when any descriptor of the file closes (a status probe in the
// same process would free a held slot); flock locks belong to the open file
// description, so each guard is its own lock, even within one process.
func TryLock(f *os.File) (bool, error) {
	err := onFd(f, func(fd int) error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) })
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		return false, nil
	}
	return false, &fs.PathError{Op: "flock", Path: f.Name(), Err: err}
}

// onFd runs op on f's descriptor, again for as long as it is interrupted
// (EINTR), without the side effects of f.Fd.
func onFd(f *os.File, op func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	err = rc.Control(func(fd uintptr) {
		for {
			if opErr = op(int(fd)); opErr != unix.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return opErr
}

// Linked reports whether the locked file still has a name. A file unlinked
// between our open and our lock has none: its lock guards nothing.
func Linked(fi fs.FileInfo) bool {
	n, ok := Links(fi)
	return !ok || n > 0
}

// Links returns the file's link count, if the platform reports one.
func Links(fi fs.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Nlink), true
}

// RemoveAndClose removes path if it still names the locked file fi, then
// closes f, which drops the lock. Deleting before closing matters: once the
// lock is gone another process may lock this file, and a delete after that
// would remove its slot file while it runs (the unlink race).
func RemoveAndClose(f *os.File, path string, fi fs.FileInfo) error {
	var rmErr error
	if StillAt(path, fi) {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			rmErr = err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return rmErr
}
