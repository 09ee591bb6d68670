//go:build !linux

package filelock

import "os"

// Elsewhere each waiter holds a shared lock on the waiters file and
// AnyWaiting tries an exclusive one. That attempt fails also while another
// process makes the same check, so a failure is not sure: the caller
// confirms it by looking for tickets in the queue.

// MarkWaiting records, on f (the waiters file, opened by this waiter),
// that one more process waits. It never blocks: marked is false when an
// exclusive lock is in the way (an AnyWaiting check, for an instant, or
// any other process's), and the caller tries again later.
func MarkWaiting(f *os.File) (marked bool, err error) { return tryLockShared(f) }

// AnyWaiting reports whether some process holds a waiting mark on f.
// sure is false when the answer may be wrong; the caller then looks at
// the queue itself.
func AnyWaiting(f *os.File) (waiting, sure bool) {
	ok, err := TryLock(f)
	if err != nil || !ok {
		return true, false
	}
	unlock(f)
	return false, true
}

// UnmarkWaiting removes this waiter's mark from f, which stays open for
// the next waiter to mark: a process's marks are told apart by their open
// files, so f must not be shared by two waiters at once.
func UnmarkWaiting(f *os.File) error { return unlock(f) }
