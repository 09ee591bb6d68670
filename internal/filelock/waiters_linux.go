package filelock

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// On Linux the waiters file carries open-file-description record locks:
// each waiter holds a read lock on its first byte, and AnyWaiting asks
// with F_OFD_GETLK whether a write lock could be placed. Asking takes no
// lock, so concurrent checks never see each other as waiters (an exclusive
// flock attempt would), and costs one system call. Like flock locks, OFD
// locks belong to the open file and die with the process.

// MarkWaiting records, on f (the waiters file, opened by this waiter),
// that one more process waits. It never blocks: marked is false when a
// conflicting lock is in the way (one no waiter takes, but any process
// that may write the file can), and the caller tries again later. While
// such a lock is held, AnyWaiting answers true anyway.
func MarkWaiting(f *os.File) (marked bool, err error) {
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: 0, Len: 1}
	err = fcntlLock(f, unix.F_OFD_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return false, nil
	}
	return err == nil, err
}

// AnyWaiting reports whether some process holds a waiting mark on f.
// sure is false when the answer may be wrong (the marks could not be
// read); the caller then looks at the queue itself.
func AnyWaiting(f *os.File) (waiting, sure bool) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 1}
	if err := fcntlLock(f, unix.F_OFD_GETLK, &lk); err != nil {
		return true, false
	}
	return lk.Type != unix.F_UNLCK, true
}

func fcntlLock(f *os.File, cmd int, lk *unix.Flock_t) error {
	if err := onFd(f, func(fd int) error { return unix.FcntlFlock(uintptr(fd), cmd, lk) }); err != nil {
		return &fs.PathError{Op: "fcntl", Path: f.Name(), Err: err}
	}
	return nil
}

// UnmarkWaiting removes this waiter's mark from f, which stays open for
// the next waiter to mark: a process's marks are told apart by their open
// file descriptions, so f must not be shared by two waiters at once.
func UnmarkWaiting(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: 0, Len: 1}
	return fcntlLock(f, unix.F_OFD_SETLK, &lk)
}
