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
// FIFO planted there cannot hang the open (a regular file is unaffected).
const NoFollow = unix.O_NOFOLLOW | unix.O_NONBLOCK

// Open creates path, read-write, mode 0600; an existing path fails.
func Open(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|NoFollow, 0o600)
}

// TryLock takes an exclusive flock on f without blocking and reports
// whether it got it. flock, not fcntl: fcntl locks belong to the process
// and vanish when any of its descriptors of the file closes (a status probe
// would free a held slot); flock's belong to the open file description.
func TryLock(f *os.File) (bool, error) {
	return tried(OnFd(f, tryFlock), f.Name())
}

func tryFlock(fd int) error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) }

// tried turns tryFlock's error into TryLock's answer.
func tried(err error, path string) (bool, error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		return false, nil
	}
	return false, &fs.PathError{Op: "flock", Path: path, Err: err}
}

// WaitUnlocked blocks until no exclusive lock is held on f's file: it
// waits for a shared flock and drops it, so the holder's release or death
// is the wake-up. It cannot be cancelled: a caller that gives up lets it be.
func WaitUnlocked(f *os.File) error {
	if err := OnFd(f, func(fd int) error { return unix.Flock(fd, unix.LOCK_SH) }); err != nil {
		return &fs.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
	return OnFd(f, func(fd int) error { return unix.Flock(fd, unix.LOCK_UN) })
}

// OnFd runs op on f's descriptor, retried on EINTR (f.Fd has side effects).
func OnFd(f *os.File, op func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = retryEINTR(func() error { return op(int(fd)) }) }); err != nil {
		return err
	}
	return opErr
}

// retryEINTR runs op again for as long as it is interrupted.
func retryEINTR(op func() error) error {
	for {
		if err := op(); err != unix.EINTR {
			return err
		}
	}
}

// Linked reports whether the locked file still has a name. A file unlinked
// between our open and our lock has none: its lock guards nothing.
func Linked(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || st.Nlink > 0
}

// RemoveAndClose removes path if it still names the locked file fi, then
// closes f, dropping the lock: after that another process may lock the
// file, and a delete would remove its slot file while it runs.
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

// A PathLock is an exclusive lock TryLockPath took, on the file it keeps.
type PathLock struct{ f *os.File }

// TryLockPath opens path (flag: os.O_RDONLY or os.O_RDWR, with NoFollow)
// and tries its exclusive lock, as TryLock does: the lock when taken; nil,
// false, nil when another holds it. The file becomes an *os.File only once
// locked: a probe mostly meets a held file, and os.OpenFile would first try
// to register it with Go's poller, a system call that fails for it.
func TryLockPath(path string, flag int) (*PathLock, bool, error) {
	var fd int
	err := retryEINTR(func() (err error) {
		fd, err = unix.Open(path, flag|NoFollow|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, false, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	if locked, err := tried(retryEINTR(func() error { return tryFlock(fd) }), path); !locked {
		unix.Close(fd)
		return nil, false, err
	}
	return &PathLock{os.NewFile(uintptr(fd), path)}, true, nil
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
