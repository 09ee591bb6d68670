package line

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
)

// A waker wakes a waiter by the locks themselves, on every platform: for
// each file it waits on (the ticket ahead; for the head of the line, the
// held slots), a goroutine blocks in a shared lock, which the kernel
// grants the instant the holder releases its exclusive lock or dies. An
// idle waiter makes no system call at all, and no file events are needed:
// what Linux runs is what macOS and the BSDs run.
//
// A blocking lock cannot be cancelled (closing the descriptor does not
// wake it), so a waiter that gives up leaves the wait to finish on its
// own: it returns at the holder's release, drops the shared lock and
// ends. Waits are shared across the process, one per file, so a waiter
// that gives up and asks again joins the same wait: the threads blocked
// are bounded by the files waited on, not by the number of waits.
type waker struct {
	wake    chan struct{} // buffered: a wake-up between waits is kept
	waiting []*lockWait   // the waits this waker subscribes to
	// polls is set when some file cannot be waited on by its lock (too
	// many files, a young empty file, an unreadable one); poll is the
	// next sleep, which grows while the waker keeps polling.
	polls bool
	poll  time.Duration
}

// maxLockWaits bounds the files one waker waits on by their locks: each
// is a thread blocked in the kernel. Past it (the head of a pool larger
// than 64), the waker polls as well.
const maxLockWaits = 64

// Polling bounds: the sleep grows from pollMin to pollMax, jittered so
// that waiters who started together do not look together.
const (
	pollMin = time.Millisecond
	pollMax = 250 * time.Millisecond
)

func newWaker() *waker { return &waker{wake: make(chan struct{}, 1)} }

// lockWaits holds the process's running waits, by path.
var lockWaits struct {
	sync.Mutex
	byPath map[string]*lockWait
}

// A lockWait is one goroutine blocked on one file's lock, and the wakers
// to wake when it returns.
type lockWait struct {
	path string
	fi   fs.FileInfo // the file waited on: a new file at path needs a new wait
	done bool
	subs map[chan struct{}]bool
}

// reset drops every wait and any wake-up not yet taken.
func (w *waker) reset() {
	lockWaits.Lock()
	for _, lw := range w.waiting {
		delete(lw.subs, w.wake)
	}
	lockWaits.Unlock()
	w.waiting = w.waiting[:0]
	w.polls = false
	select {
	case <-w.wake:
	default:
	}
}

// watch subscribes w to the release of path's lock, starting a wait if
// the process has none for that very file. A missing file is reported as
// fs.ErrNotExist, and a file that cannot be waited on makes w poll.
func (w *waker) watch(path string) error {
	if len(w.waiting) >= maxLockWaits {
		w.pollToo()
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|filelock.NoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fs.ErrNotExist
	}
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() {
			return nil // planted (a symlink): nothing to wait for there
		}
		w.pollToo()
		return nil
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil // planted (a FIFO, a directory): nothing to wait for there
	}
	if fi.Size() == 0 {
		// Just created, perhaps not locked yet by its creator (every
		// holder records itself right after locking): a shared lock now
		// would be granted, and would make the creator's own lock fail.
		// Look again shortly instead.
		f.Close()
		w.pollToo()
		return nil
	}
	lockWaits.Lock()
	defer lockWaits.Unlock()
	lw := lockWaits.byPath[path]
	if lw == nil || !os.SameFile(lw.fi, fi) {
		lw = &lockWait{path: path, fi: fi, subs: map[chan struct{}]bool{}}
		if lockWaits.byPath == nil {
			lockWaits.byPath = map[string]*lockWait{}
		}
		lockWaits.byPath[path] = lw
		go lw.run(f)
	} else {
		f.Close()
	}
	if lw.done {
		ring(w.wake)
		return nil
	}
	lw.subs[w.wake] = true
	w.waiting = append(w.waiting, lw)
	return nil
}

// run waits for f's lock to be free, then wakes every subscriber.
func (lw *lockWait) run(f *os.File) {
	err := filelock.WaitUnlocked(f)
	f.Close()
	if err != nil {
		// The lock cannot be waited for here (ENOLCK on a network
		// filesystem without a lock daemon, say): wake the waiters, who
		// look again, but no faster than a poll would, or they would spin.
		time.Sleep(pollMax / 2)
	}
	lockWaits.Lock()
	defer lockWaits.Unlock()
	if lockWaits.byPath[lw.path] == lw {
		delete(lockWaits.byPath, lw.path)
	}
	lw.done = true
	for ch := range lw.subs {
		ring(ch)
	}
	lw.subs = nil
}

// pollToo makes the waker poll as well as wait on locks.
func (w *waker) pollToo() {
	w.polls = true
	w.poll = max(w.poll, pollMin)
}

// nextPoll returns when to look again if w polls (zero if it does not),
// jittered, and grows the sleep after it.
func (w *waker) nextPoll() time.Time {
	if !w.polls {
		w.poll = 0
		return time.Time{}
	}
	sleep := w.poll/2 + rand.N(w.poll/2+1)
	w.poll = min(2*w.poll, pollMax)
	return time.Now().Add(sleep)
}

// ring wakes the waker that owns ch, once, without blocking.
func ring(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
