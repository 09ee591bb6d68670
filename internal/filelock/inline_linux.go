package filelock

import (
	"hash/fnv"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// A served ticket (llmslots's serve.go) is a second name of a spare, whose
// flock is held for as long as its process lives: it cannot tell a waiter
// that waits on locks (no file events: inotify's instances used up) when
// the ticket leaves the line. So while the ticket is in line its waiter
// also holds an OFD write lock on one byte far past the file's end, which
// such a waiter waits on instead. flock and OFD locks are independent.
//
// The byte depends on the ticket's name: the spare is a ticket again at
// the process's next wait, under another name, and a waiter still blocked
// on the lock of the last one must not be held up by the new one.

// inLineByte is where a ticket's in-line byte is: past any record.
func inLineByte(name string) int64 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return 1<<40 + int64(h.Sum32())
}

// LockInLine takes f's in-line lock for its ticket name without waiting;
// false when another process holds a lock on that byte (a waiter taking
// and dropping it, for an instant; or any process that may open the
// file).
func LockInLine(f *os.File, name string) bool {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: inLineByte(name), Len: 1}
	return fcntlLock(f, unix.F_OFD_SETLK, &lk) == nil
}

// UnlockInLine drops f's in-line lock for name.
func UnlockInLine(f *os.File, name string) {
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: inLineByte(name), Len: 1}
	fcntlLock(f, unix.F_OFD_SETLK, &lk)
}

// WaitNotInLine blocks until no in-line lock for name is held on f's file
// (its ticket left the line, or its waiter died), then returns holding
// nothing. Like WaitUnlocked it cannot be cancelled.
func WaitNotInLine(f *os.File, name string) error {
	err := onFd(f, func(fd int) error { return AwaitNotInLine(fd, name) })
	if err != nil {
		return &fs.PathError{Op: "fcntl", Path: f.Name(), Err: err}
	}
	return nil
}

// AwaitNotInLine is WaitNotInLine on the descriptor fd.
func AwaitNotInLine(fd int, name string) error {
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: inLineByte(name), Len: 1}
	for {
		err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLKW, &lk)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	lk.Type = unix.F_UNLCK
	return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk)
}

// InLine reports whether another open file description holds the in-line
// lock for name on the file open at fd: its ticket is still in line, or,
// once served, its waiter has not yet left the line. One F_OFD_GETLK,
// which takes nothing, so it never holds up the lock's owner.
func InLine(fd int, name string) bool {
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: inLineByte(name), Len: 1}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk); err != nil {
		return false
	}
	return lk.Type != unix.F_UNLCK
}
