//go:build !linux

package llmslots

import "os"

// Elsewhere each waiter holds a shared lock on the waiters file and
// waitersPresent tries an exclusive one. That attempt fails also while
// another process makes the same check, so a failure is confirmed by
// looking for tickets in the queue.

func markWaiting(f *os.File) error { return lockShared(f) }

func anyWaiting(f *os.File, qdir string) bool {
	ok, err := tryLock(f)
	if err != nil {
		return hasTickets(qdir)
	}
	if ok {
		unlockFile(f)
		return false
	}
	return hasTickets(qdir)
}
