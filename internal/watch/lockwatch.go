package watch

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
)

// A lockWatcher wakes a waiter by the locks themselves, on every platform:
// for each file it watches (the ticket ahead; for the head of the line,
// the held slots), a goroutine waits in a blocking shared lock, which the
// kernel grants the instant the holder releases its exclusive lock or
// dies. No file events are needed (macOS, the BSDs, Windows, Linux
// without inotify, network filesystems) and an idle waiter makes no
// system call at all.
//
// A blocking lock cannot be cancelled (closing the descriptor does not
// wake it, and the runtime restarts it after a signal), so a waiter that
// gives up leaves the wait to finish on its own: it returns at the
// holder's release, takes and drops the shared lock, and ends. Waits are
// shared across the process, one per file, so a waiter that gives up and
// asks again joins the same wait: the threads blocked are bounded by the
// files waited on, not by the number of waits.
type lockWatcher struct {
	wake    chan struct{} // buffered: a wake-up between waits is kept
	waiting []*lockWait   // the waits this watcher subscribes to
	// poll, once set, is also used: some file cannot be waited on by its
	// lock (too many files, a spare's second name, an unreadable file).
	poll  *poller
	timer *time.Timer
}

// maxLockWaits bounds the files one watcher waits on by their locks: each
// is a thread blocked in the kernel. Past it (the head of a large pool),
// the watcher polls as well.
const maxLockWaits = 64

func newLockWatcher() *lockWatcher {
	return &lockWatcher{wake: make(chan struct{}, 1)}
}

// lockWaits holds the process's running waits, by path.
var lockWaits struct {
	sync.Mutex
	byPath map[string]*lockWait
}

// A lockWait is one goroutine blocked on one file's lock, and the
// watchers to wake when it returns.
type lockWait struct {
	path   string
	fi     fs.FileInfo // the file waited on: a new file at path needs a new wait
	inLine bool        // waits on the in-line lock (see filelock.LockInLine)
	done   bool
	subs   map[chan struct{}]bool
}

func (w *lockWatcher) Reset() {
	lockWaits.Lock()
	for _, lw := range w.waiting {
		delete(lw.subs, w.wake)
	}
	lockWaits.Unlock()
	w.waiting = w.waiting[:0]
	w.poll = nil
	select {
	case <-w.wake:
	default:
	}
}

// WatchSlots waits on the locks of slots, the slot files of dir the caller
// found held; a missing one wakes the waiter at once.
func (w *lockWatcher) WatchSlots(dir string, slots []string) error {
	for _, path := range slots {
		if err := w.watch(path, false); errors.Is(err, fs.ErrNotExist) {
			ring(w.wake) // freed since the caller looked
		}
	}
	return nil
}

// WatchTicket waits on the ticket's lock: released when its waiter leaves
// (it deletes the ticket, then closes it) or dies.
func (w *lockWatcher) WatchTicket(path string, _ bool) error {
	err := w.watch(path, true)
	if errors.Is(err, fs.ErrNotExist) {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	return nil
}

// watch subscribes w to the wait on path's lock, starting one if the
// process has none for that very file. A ticket that is a spare's second
// name (a served ticket: llmslots's serve.go) is waited on by its in-line
// lock instead, which its waiter drops when it leaves the line.
func (w *lockWatcher) watch(path string, ticket bool) error {
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
	inLine := false
	if n, ok := filelock.Links(fi); ok && n > 1 {
		if !ticket {
			// A slot held through a spare (Linux): its lock outlives the
			// slot's name, since the holder keeps the spare. Its release
			// deletes the name, which only file events or a look can see.
			f.Close()
			w.pollToo()
			return nil
		}
		// A served ticket: its in-line lock goes when it leaves the line.
		inLine = true
	}
	lockWaits.Lock()
	defer lockWaits.Unlock()
	lw := lockWaits.byPath[path]
	if lw == nil || !os.SameFile(lw.fi, fi) || lw.inLine != inLine {
		lw = &lockWait{path: path, fi: fi, inLine: inLine, subs: map[chan struct{}]bool{}}
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
	var err error
	if lw.inLine {
		err = filelock.WaitNotInLine(f, filepath.Base(lw.path))
	} else {
		err = filelock.WaitUnlocked(f)
	}
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

// pollToo makes the watcher poll as well as wait on locks.
func (w *lockWatcher) pollToo() {
	if w.poll == nil {
		w.poll = newPoller()
	}
}

func (w *lockWatcher) Wait(ctx context.Context, deadline time.Time) error {
	limit := time.Now().Add(recheckEvery)
	if !deadline.IsZero() && deadline.Before(limit) {
		limit = deadline
	}
	if w.poll != nil {
		// Poll, but let a lock's release cut the sleep short.
		if at := time.Now().Add(w.poll.next()); at.Before(limit) {
			limit = at
		}
	}
	d := time.Until(limit)
	if d <= 0 {
		return ctx.Err()
	}
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	defer w.timer.Stop()
	select {
	case <-w.wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-w.timer.C:
		return nil
	}
}

func (w *lockWatcher) Close() { w.Reset() }

// Keep does nothing: a lock watcher waits for no file events, so its
// waiter takes a ticket no releaser hands a slot to.
func (w *lockWatcher) Keep(string, string) error { return nil }

func (w *lockWatcher) SawSlots() bool { return true }

func (w *lockWatcher) Events() bool { return false }

func (w *lockWatcher) OnlySlots() bool { return false }

func (w *lockWatcher) OwnMoved() bool { return true }

func (w *lockWatcher) Fallback() error { return nil }

// ring wakes the watcher that owns ch, once, without blocking.
func ring(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
