package line

import (
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
)

// A waker wakes a waiter by the locks themselves: for each file it waits
// on (the ticket ahead; for the head of the line, the held slots), a
// goroutine blocks in a shared lock, which the kernel grants the instant
// the holder lets go or dies. An idle waiter makes no system call at all.
//
// A blocking lock cannot be cancelled: a wait given up ends at the
// holder's release. Waits are shared across the process, one per file, so
// the threads blocked are bounded by the files, not by the waits.
type waker struct {
	wake    chan struct{} // buffered: a wake-up between waits is kept
	waiting []*lockWait   // the waits this waker subscribes to
	at      time.Time     // when to look again though nothing wakes it
	// polls: some file cannot be waited on by its lock (too many, a young
	// empty file, an unreadable one): the waker polls too, its sleep growing.
	polls bool
	poll  time.Duration
}

const (
	// maxLockWaits bounds the files one waker waits on by their locks
	// (each a thread blocked in the kernel): the ticket ahead and 64 slots.
	maxLockWaits = 1 + 64
	// The polling sleep grows from pollMin to pollMax, jittered so that
	// waiters who started together do not look together.
	pollMin = time.Millisecond
	pollMax = 250 * time.Millisecond
	// recheckEvery is how often a waiter looks again with no wake-up, in
	// case one was lost. Rare: each timer wake-up of an idle process costs.
	recheckEvery = 15 * time.Second
)

// errFree reports a file whose lock nobody holds: look at it again now.
var errFree = errors.New("lock free")

// lockWaits holds the process's running waits, by path.
var lockWaits = struct {
	sync.Mutex
	byPath map[string]*lockWait
}{byPath: map[string]*lockWait{}}

// A lockWait is a goroutine blocked on a file's lock, and the wakers to wake.
type lockWait struct {
	fi   fs.FileInfo // the file waited on: a new file at its path needs a new wait
	subs map[chan struct{}]bool
}

// watch subscribes w to the release of path's lock, starting a wait if the
// process has none for that very file. It reports a missing file as
// fs.ErrNotExist, a free lock as errFree; one it cannot wait on makes w poll.
func (w *waker) watch(path string) error {
	if len(w.waiting) >= maxLockWaits {
		w.polls = true
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|filelock.NoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fs.ErrNotExist
	}
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr != nil || fi.Mode().IsRegular() {
			w.polls = true // else planted (a symlink): nothing to wait for
		}
		return nil
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil // planted (a FIFO, a directory): nothing to wait for
	}
	if fi.Size() == 0 {
		// Perhaps not locked yet by its creator: a shared lock now would
		// make the creator's own lock fail. Look again shortly.
		f.Close()
		w.polls = true
		return nil
	}
	// A free lock (a dead holder's or waiter's) is not waited on: the wait's
	// shared lock could make this waiter's own probe, just after, fail.
	if ok, _ := filelock.TryLock(f); ok {
		f.Close()
		return errFree
	}
	lockWaits.Lock()
	defer lockWaits.Unlock()
	lw := lockWaits.byPath[path]
	if lw == nil || !os.SameFile(lw.fi, fi) {
		lw = &lockWait{fi: fi, subs: map[chan struct{}]bool{}}
		lockWaits.byPath[path] = lw
		go lw.run(f)
	} else {
		f.Close()
	}
	lw.subs[w.wake] = true
	w.waiting = append(w.waiting, lw)
	return nil
}

// run waits for f's lock to be free, then wakes every subscriber.
func (lw *lockWait) run(f *os.File) {
	if err := filelock.WaitUnlocked(f); err != nil {
		// No lock to wait on (ENOLCK on a network filesystem, say): wake
		// the waiters no faster than a poll would, or they would spin.
		time.Sleep(pollMax / 2)
	}
	f.Close()
	lockWaits.Lock()
	defer lockWaits.Unlock()
	if lockWaits.byPath[f.Name()] == lw {
		delete(lockWaits.byPath, f.Name())
	}
	for ch := range lw.subs {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
	lw.subs = nil
}

// gone watches the ticket at path and reports it gone, or its waiter dead.
func (w *waker) gone(path string) bool {
	err := w.watch(path)
	return errors.Is(err, fs.ErrNotExist) || err == errFree
}

// until makes the next sleep end by at, if at is not zero.
func (w *waker) until(at time.Time) {
	if !at.IsZero() && (w.at.IsZero() || at.Before(w.at)) {
		w.at = at
	}
}

// sleep waits for a wake-up, the time set by until (recheckEvery at most,
// sooner if w polls) or the end of ctx, and then drops every wait.
func (w *waker) sleep(ctx context.Context) error {
	defer w.reset()
	w.until(time.Now().Add(recheckEvery))
	if w.polls {
		w.poll = max(w.poll, pollMin)
		w.until(time.Now().Add(w.poll/2 + rand.N(w.poll/2+1)))
		w.poll = min(2*w.poll, pollMax)
	} else {
		w.poll = 0
	}
	timer := time.NewTimer(time.Until(w.at))
	defer timer.Stop()
	select {
	case <-w.wake:
	case <-timer.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// reset drops every wait and any wake-up not yet taken.
func (w *waker) reset() {
	lockWaits.Lock()
	for _, lw := range w.waiting {
		delete(lw.subs, w.wake)
	}
	lockWaits.Unlock()
	w.waiting, w.at, w.polls = w.waiting[:0], time.Time{}, false
	select {
	case <-w.wake:
	default:
	}
}
