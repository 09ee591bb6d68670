package watch

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Events that may let a waiter proceed. In the pool directory: a slot file
// deleted (a release, a forced release) or closed after writing (its holder
// died: the kernel closed the descriptor it created the file with). On a
// ticket: its link count changed (its waiter left and deleted it), it was
// closed after writing (its waiter died), or it is gone.
const (
	slotEvents   = unix.IN_DELETE | unix.IN_CLOSE_WRITE | unix.IN_MOVED_FROM | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	ticketEvents = unix.IN_ATTRIB | unix.IN_CLOSE_WRITE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	// A ticket a releaser may hand its slot to is renamed into the slot:
	// no reason to wake the waiter behind it. Its waiter leaving the line
	// otherwise (deleting the name) changes its link count: IN_ATTRIB.
	servedTicketEvents = ticketEvents &^ unix.IN_MOVE_SELF
	// The waiter's own ticket: renamed means served; its times changed,
	// poked (a release that could not serve it, see llmslots's serve.go).
	ownEvents = unix.IN_MOVE_SELF | unix.IN_ATTRIB
	// The pool directory, kept by every servable waiter: only a holder's
	// death (the kernel's close) or the directory's removal. A release
	// that deletes its slot file (not one that serves the line) wakes
	// only the waiters that watch slots, the first two in line: a head
	// that became first unwoken (the one ahead was served) sees it when
	// the holder ahead, whose file it still watches, releases.
	keptDirEvents = unix.IN_CLOSE_WRITE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
)

// inotifyWatcher wakes a waiter on filesystem events. One per waiter: the
// watches it holds are its own, so a release wakes the queue's head and a
// departure wakes only the ticket behind it, never the whole queue.
type inotifyWatcher struct {
	f   *os.File // the inotify descriptor, in Go's poller
	fd  int
	wds []int // removed at each Reset
	// kept are the watches of a whole wait (Keep), removed at Close; dirWd
	// is the pool directory's among them, and sawSlots is set when it
	// raises an event (read by SawSlots).
	kept     []int
	dirWd    int
	sawSlots bool
	sawOther bool // an event of another watch since the last OnlySlots
	// pending is set when an event of a kept watch was read: a Reset in
	// the middle of a look reads them too, and a wait must not then
	// sleep through them. SawSlots, which reads them just before the
	// waiter looks, clears it.
	pending bool
	// ownWd is the kept watch of the waiter's own ticket (0: none), and
	// ownMoved is set when it may have been renamed since OwnMoved last
	// asked: any event of that watch, an overflowed queue, the watch
	// just set, or a wake-up by the safety timer.
	ownWd    int
	ownMoved bool
	buf      [4096]byte
	// poll, once set, is what the watcher does instead: a watch could not
	// be added (the user's max_user_watches reached, a permission), so
	// events cannot be trusted for this wait.
	poll    *poller
	pollWhy error
}

// New returns an inotify watcher, or one that waits on locks where events
// cannot be trusted (netfs: the pool is on a network filesystem, whose
// other hosts' changes raise no events; see NetworkFS, which the caller
// asks once, not at every wait) or inotify is unavailable (its per-user
// limit of instances reached, say).
func New(netfs bool) Watcher {
	if ForcePortable || netfs {
		return newLockWatcher()
	}
	idleWatchers.Lock()
	if n := len(idleWatchers.list); n > 0 {
		w := idleWatchers.list[n-1]
		idleWatchers.list = idleWatchers.list[:n-1]
		idleWatchers.Unlock()
		return w
	}
	idleWatchers.Unlock()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		// The user's inotify instances are used up: wait on locks, as
		// other platforms do.
		return newLockWatcher()
	}
	return &inotifyWatcher{f: os.NewFile(uintptr(fd), "inotify"), fd: fd}
}

// idleWatchers keeps finished watchers for reuse. Closing an inotify
// descriptor makes the kernel wait out an RCU grace period (measured here:
// 8 ms at the median), which a waiter that just got its slot should not
// pay; nor should the next waiter pay for a new one. Few are kept: each
// counts against the user's limit of inotify instances (128 by default),
// which every process of the user shares.
var idleWatchers struct {
	sync.Mutex
	list []*inotifyWatcher
}

const maxIdleWatchers = 2

// Reset removes the watches and discards queued events: removing a watch
// queues an IN_IGNORED event, which would wake the next wait at once, and
// the caller looks at the whole state afresh after every reset anyway.
// A watch the kernel removed already, and whose IN_IGNORED the wake-up
// read (its file was deleted and closed), is not asked for again: with no
// watch left, nothing new is queued since the last read, which emptied
// the queue.
func (w *inotifyWatcher) Reset() {
	if w.removeWatches() {
		w.drain()
	}
}

// removeWatches removes the watches still set. It reports whether that
// queued events: an IN_IGNORED for each, from the removal or, where the
// kernel removed the watch first (EINVAL here), from the kernel.
func (w *inotifyWatcher) removeWatches() (queued bool) {
	for _, wd := range w.wds {
		unix.InotifyRmWatch(w.fd, uint32(wd))
	}
	queued = len(w.wds) > 0
	w.wds = w.wds[:0]
	return queued
}

// drain reads until a read shows the queue empty.
func (w *inotifyWatcher) drain() {
	for {
		n, err := unix.Read(w.fd, w.buf[:])
		if err != nil || !w.consume(n) {
			return
		}
	}
}

// maxEvent is the size of the largest inotify event. A read returns as
// many whole events as fit, so one that leaves at least this much of the
// buffer unused found the queue empty, and no read is needed to learn
// that (it would fail with EAGAIN).
const maxEvent = unix.SizeofInotifyEvent + unix.NAME_MAX + 1

// consume looks at the n bytes of events just read: a watch whose
// IN_IGNORED is among them was removed by the kernel (its file deleted or
// unmounted) and is forgotten, so that Reset does not ask to remove it
// again (EINVAL). It reports whether more events may be queued.
func (w *inotifyWatcher) consume(n int) (more bool) {
	for off := 0; off+unix.SizeofInotifyEvent <= n; {
		ev := w.buf[off:n]
		wd := int(int32(binary.NativeEndian.Uint32(ev[0:4])))
		mask := binary.NativeEndian.Uint32(ev[4:8])
		nameLen := int(binary.NativeEndian.Uint32(ev[12:16]))
		if mask&unix.IN_Q_OVERFLOW != 0 || wd == w.ownWd {
			// Renamed, or its name removed or poked (IN_ATTRIB): any of
			// them is worth a look at the ticket.
			w.ownMoved = true
		}
		if mask&unix.IN_IGNORED != 0 {
			if wd == w.ownWd {
				w.ownWd = 0 // no watch any more: OwnMoved reports true
			}
			if i := slices.Index(w.wds, wd); i >= 0 {
				w.wds = slices.Delete(w.wds, i, i+1)
			}
			if i := slices.Index(w.kept, wd); i >= 0 {
				w.kept = slices.Delete(w.kept, i, i+1)
			}
		} else {
			if wd == w.dirWd && wd != 0 {
				w.sawSlots = true
			} else {
				w.sawOther = true
			}
			if slices.Contains(w.kept, wd) {
				w.pending = true
			}
		}
		off += unix.SizeofInotifyEvent + nameLen
	}
	return n > len(w.buf)-maxEvent
}

func (w *inotifyWatcher) WatchSlots(dir string, _ []string) error {
	return w.add(dir, slotEvents|unix.IN_ONLYDIR)
}

func (w *inotifyWatcher) WatchTicket(path string, moves bool) error {
	if !moves {
		return w.add(path, servedTicketEvents)
	}
	return w.add(path, ticketEvents)
}

// Keep sets the watches of a whole wait. A missing own ticket is no
// error: it was renamed into a slot already, which the caller's look
// finds.
//
// Called again (the waiter took its place in line again), it sets what is
// missing; a kept watch of dir keeps what WatchSlots added to it.
func (w *inotifyWatcher) Keep(dir, own string) error {
	if w.dirWd == 0 {
		wd, err := w.watch(dir, keptDirEvents|unix.IN_ONLYDIR)
		if err != nil || wd < 0 {
			return err
		}
		w.keep(wd)
		w.dirWd = wd
	}
	// The next look sees for itself whether the ticket moved: a rename
	// in the middle of inotify_add_watch (after its lookup of the path,
	// before the watch is attached) raises no event, yet the add
	// succeeds, on the file now named as a slot.
	w.ownMoved = true
	at := own
	if TestOwnWatchPath != nil {
		var done func()
		at, done = TestOwnWatchPath(own)
		defer done()
	}
	if wd, err := w.watch(at, ownEvents); err == nil && wd >= 0 {
		w.keep(wd)
		w.ownWd = wd
	} else {
		w.ownWd = 0
	}
	return nil
}

// TestOwnWatchPath, set by llmslots's tests, gives the path Keep sets the
// watch of the waiter's own ticket on, in place of own, and what to do
// after: a /proc/self/fd name of a descriptor the test opened on own
// before renaming it, to make the kernel's window inside
// inotify_add_watch (the path looked up, the watch not yet attached) as
// wide as a test needs.
var TestOwnWatchPath func(own string) (at string, done func())

// keep makes wd a kept watch, once.
func (w *inotifyWatcher) keep(wd int) {
	if !slices.Contains(w.kept, wd) {
		w.kept = append(w.kept, wd)
	}
	if i := slices.Index(w.wds, wd); i >= 0 {
		w.wds = slices.Delete(w.wds, i, i+1)
	}
}

// SawSlots reads the events queued, then reports and forgets whether the
// pool directory's kept watch raised one.
func (w *inotifyWatcher) SawSlots() bool {
	if w.poll != nil {
		return true
	}
	w.drain()
	saw := w.sawSlots
	w.sawSlots, w.pending = false, false
	return saw
}

func (w *inotifyWatcher) Events() bool { return w.poll == nil }

// OwnMoved reports and forgets whether the own ticket's kept watch may
// have seen a rename; events still queued are read first.
func (w *inotifyWatcher) OwnMoved() bool {
	if w.poll != nil || w.ownWd == 0 {
		return true
	}
	w.drain()
	moved := w.ownMoved
	w.ownMoved = false
	return moved
}

// OnlySlots reports whether every event since the last call came from the
// kept watch of the pool directory (none from the waiter's own ticket or
// the one ahead), and forgets.
func (w *inotifyWatcher) OnlySlots() bool {
	if w.poll != nil {
		return false
	}
	only := !w.sawOther
	w.sawOther = false
	return only
}

func (w *inotifyWatcher) add(path string, mask uint32) error {
	wd, err := w.watch(path, mask)
	if err != nil || wd < 0 {
		return err
	}
	// A file watched already (the pool directory, kept: WatchSlots asks
	// for more of it) has one watch, whose mask was just replaced: it
	// stays kept.
	if !slices.Contains(w.kept, wd) {
		w.wds = append(w.wds, wd)
	}
	return nil
}

// watch adds a watch of path and returns its descriptor; -1 when the
// watcher polls instead.
func (w *inotifyWatcher) watch(path string, mask uint32) (int, error) {
	if w.poll != nil {
		return -1, nil
	}
	wd, err := unix.InotifyAddWatch(w.fd, path, mask|unix.IN_DONT_FOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return -1, &os.PathError{Op: "inotify_add_watch", Path: path, Err: err}
	}
	if err != nil {
		// Any other failure (ENOSPC: max_user_watches; EACCES; ENOTDIR
		// for a path that changed kind) is no reason to fail the wait:
		// poll for the rest of it, as other platforms do.
		w.poll = newPoller()
		w.pollWhy = &os.PathError{Op: "inotify_add_watch", Path: path, Err: err}
		return -1, nil
	}
	return wd, nil
}

// Wait blocks until an event arrives, deadline passes (zero: none), or ctx
// ends; the caller then looks at the whole state afresh, so the events
// read are not acted on one by one, and any left queued (a read that
// filled the buffer) are drained by the next Reset. An overflowed event
// queue is just another wake-up.
// A safety timer wakes it every recheckEvery in case an event was missed.
func (w *inotifyWatcher) Wait(ctx context.Context, deadline time.Time) error {
	if w.poll != nil {
		return w.poll.Wait(ctx, deadline)
	}
	if w.pending {
		w.pending = false
		return nil
	}
	limit := time.Now().Add(recheckEvery)
	if !deadline.IsZero() && deadline.Before(limit) {
		limit = deadline
	}
	w.f.SetReadDeadline(limit)
	stop := context.AfterFunc(ctx, func() { w.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	n, err := w.f.Read(w.buf[:])
	if err == nil {
		if w.consume(n) {
			w.drain()
		}
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The deadline or the safety timer: look again, at the own
		// ticket too, in case an event was missed.
		w.ownMoved = true
		return nil
	}
	return err
}

// Fallback reports why this watcher polls, once it does.
func (w *inotifyWatcher) Fallback() error { return w.pollWhy }

// Close hands the watcher back for reuse, or closes it in the
// background when enough are idle.
func (w *inotifyWatcher) Close() {
	// Drained even with no watch left to remove: events queued since the
	// last read would wake the next user of this watcher for nothing.
	w.wds = append(w.wds, w.kept...)
	w.kept, w.dirWd, w.ownWd, w.ownMoved = w.kept[:0], 0, 0, false
	w.removeWatches()
	w.drain()
	w.sawSlots, w.sawOther, w.pending = false, false, false
	w.poll, w.pollWhy = nil, nil
	idleWatchers.Lock()
	if len(idleWatchers.list) < maxIdleWatchers {
		idleWatchers.list = append(idleWatchers.list, w)
		idleWatchers.Unlock()
		return
	}
	idleWatchers.Unlock()
	go w.f.Close()
}

// NetworkFS reports whether dir is on a filesystem whose changes made by
// other hosts raise no inotify events.
func NetworkFS(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	switch uint32(st.Type) {
	case unix.NFS_SUPER_MAGIC, unix.SMB_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC,
		unix.V9FS_MAGIC, unix.CEPH_SUPER_MAGIC, unix.AFS_SUPER_MAGIC, unix.AFS_FS_MAGIC, 0x65735546 /* FUSE */ :
		return true
	}
	return false
}
