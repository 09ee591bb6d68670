package llmslots

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/proc"
	"github.com/llmslots/llmslots/internal/throttle"
	"golang.org/x/sys/unix"
)

// serving is what the waiter of a servable ticket keeps.
type serving struct {
	moved  bool  // its ticket was found renamed into a slot
	lost   bool  // its ticket's name was removed by another process
	pool   *Pool // its pool, its max, and the O_PATH descriptor of its name
	max    int
	pathFD int
	// aheadFD, plus one (0: none), is open on the ticket right ahead, a
	// servable one, named aheadName, as the last look found it: its
	// waiter, once served, holds its in-line lock until it has left the
	// line, which this waiter, served just after, waits for (see
	// waitAheadLeft).
	aheadFD   int
	aheadName string
}

// servedSuffix is the suffix of a servable ticket of a waiter asking for
// max, in pid namespace ns; "" when ns is unknown.
func servedSuffix(max int, ns string) string {
	if ns == "" {
		return ""
	}
	return servedMark + strconv.Itoa(max) + "-" + ns
}

// ticketPID returns the pid in a ticket's name; 0 if there is none.
func ticketPID(name string) int {
	name = strings.TrimPrefix(name, ticketPrefix)
	if len(name) < ticketNameLen {
		return 0
	}
	// After the arrival's 20 digits and a dash come the pid's 10.
	pid, err := strconv.Atoi(name[21:31])
	if err != nil {
		return 0
	}
	return pid
}

// servedTicket makes t a second name of the spare s, recorded for this
// wait: a ticket a releaser may rename into its slot (see serve.go). It
// also opens the ticket's name (O_PATH): once renamed, /proc/self/fd tells
// the slot's name in one system call. False when no such name could be
// made; the caller then makes a ticket of its own.
func (p *Pool) servedTicket(t *ticket, arrived int64, max int, s *spare) bool {
	suffix := servedSuffix(max, self().PidNS)
	if suffix == "" || s.broken {
		return false
	}
	s.record(p.newRecord(time.Now(), max).marshal())
	if s.broken {
		return false
	}
	for range 3 {
		name := ticketPrefix + ticketName(arrived) + suffix
		path := filepath.Join(t.dir, name)
		if !lockInLine(s, name) {
			return false
		}
		err := linkFile(s.path, path)
		if err != nil {
			filelock.UnlockInLine(s.f, name)
		}
		if errors.Is(err, fs.ErrExist) {
			continue // a stray file of a sequence number reused: another one
		}
		if err != nil {
			break
		}
		fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			fd = -1 // renamed already; servedSlot looks at every slot instead
		}
		t.name, t.spare, t.pool, t.max, t.pathFD = name, s, p, max, fd
		return true
	}
	return false
}

// lockInLine takes s's in-line lock for the ticket name (see
// filelock.LockInLine): tried, a few times, never waited for; a lock held
// by another process makes the ticket the classic way.
func lockInLine(s *spare, name string) bool {
	for try := range 4 {
		if filelock.LockInLine(s.f, name) {
			return true
		}
		time.Sleep(time.Duration(50<<try) * time.Microsecond)
	}
	return false
}

// served returns the slot a releaser handed t's waiter by renaming its
// ticket, or -1: one lstat while the ticket is in place. A ticket name
// gone but found at no slot was removed by another process (the queue
// directory removed, say): the waiter goes on waiting by its arrival, as
// one whose ticket of its own was removed does, and no release can serve
// it any more.
func (t *ticket) served() int {
	if t.lost || filelock.StillAt(t.path(), t.spare.info) {
		return -1
	}
	if id := t.servedSlot(); id >= 0 {
		t.moved = true
		return id
	}
	t.lost = true
	return -1
}

// testHookLeaveServed, when set by a test, runs as a served waiter leaves
// the line, just before it drops its in-line lock.
var testHookLeaveServed func()

// renamed reports that t's ticket was renamed into a slot this waiter now
// holds.
func (t *ticket) renamed() bool { return t.moved }

// servedSlot finds the slot whose name t's spare has now that its ticket
// was renamed; -1 if none.
func (t *ticket) servedSlot() int {
	if t.pathFD >= 0 {
		var buf [unix.PathMax]byte
		if n, err := unix.Readlink("/proc/self/fd/"+strconv.Itoa(t.pathFD), buf[:]); err == nil {
			// The name the ticket's own entry has now: when it is the
			// slot's, as the pool names it, nothing more to check (a
			// pool named through a symbolic link, or a name the kernel
			// marks deleted, is checked by looking at the slot instead).
			at := string(buf[:n])
			if id := parseSlotName(filepath.Base(at)); id >= 0 {
				if path := slotPath(t.pool.dir, id); at == path || filelock.StillAt(path, t.spare.info) {
					return id
				}
			}
		}
	}
	for id := range t.max {
		// A slot this process holds through the same spare (its waiter
		// took it as the ticket was renamed) is not the one served.
		if path := slotPath(t.pool.dir, id); !heldHere(path) && filelock.StillAt(path, t.spare.info) {
			return id
		}
	}
	return -1
}

// leaveServed removes the ticket's name, unless it was renamed into a
// slot; if it was renamed just now, as the waiter gave up or took another
// slot, that slot is passed on, as a release would.
func (t *ticket) leaveServed() {
	defer func() {
		if testHookLeaveServed != nil && t.moved {
			testHookLeaveServed()
		}
		// Out of line: a waiter behind that waits on locks wakes, and a
		// waiter served just after this one returns (waitAheadLeft).
		filelock.UnlockInLine(t.spare.f, t.name)
		t.dropAhead()
		if t.pathFD >= 0 {
			unix.Close(t.pathFD)
			t.pathFD = -1
		}
	}()
	if t.moved || t.lost {
		return
	}
	err := os.Remove(t.path())
	if !errors.Is(err, fs.ErrNotExist) {
		return
	}
	if id := t.servedSlot(); id >= 0 && !heldHere(slotPath(t.pool.dir, id)) {
		t.pool.log().Debug("llmslots: passing on a slot handed over as the wait ended", "slot", id, "dir", t.pool.dir)
		t.pool.dropName(id, t.max, t.spare)
		if filelock.StillAt(slotPath(t.pool.dir, id), t.spare.info) {
			// Its name could not be removed: a spare kept now would hold
			// the slot for good. Closed instead, the slot is a dead
			// holder's, which the next acquirer reclaims.
			t.spare.broken = true
		}
	}
}

// servedGuard is the guard of slot id, handed to this waiter through its
// spare s: the record's time becomes the grant's.
func (p *Pool) servedGuard(id, max int, s *spare) *Guard {
	now := time.Now()
	s.record(p.newRecord(now, max).marshal())
	g := newGuard(p, id, s.f, s.info, now)
	g.spare, g.max = s, max
	registerGuard(g)
	p.markSlot(id, max, true)
	return g
}

// rejoin gives t's spare its ticket's name again, after a slot handed to
// it was given back (the throttle gate refused it): the same arrival, so
// the same place in line.
func (t *ticket) rejoin() {
	t.moved = false
	if linkFile(t.spare.path, t.path()) != nil {
		t.lost = true
		return
	}
	// The old descriptor names the slot given back: a new one, for the
	// next serve.
	if t.pathFD >= 0 {
		unix.Close(t.pathFD)
	}
	t.pathFD, _ = unix.Open(t.path(), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if t.pathFD < 0 {
		t.pathFD = -1
	}
}

// keepAhead keeps a descriptor of the servable ticket at path, right
// ahead of t as its look found it (see serving.aheadFD). The same ticket
// as at the last look keeps the descriptor it has.
func (t *ticket) keepAhead(path string) {
	name := filepath.Base(path)
	if t.aheadFD != 0 && t.aheadName == name {
		return
	}
	t.dropAhead()
	if fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
		t.aheadFD, t.aheadName = fd+1, name
	}
}

// dropAhead closes the descriptor keepAhead kept.
func (t *ticket) dropAhead() {
	if t.aheadFD != 0 {
		unix.Close(t.aheadFD - 1)
		t.aheadFD, t.aheadName = 0, ""
	}
}

// aheadLeaveWait bounds how long a waiter given a slot waits for the one
// ahead of it, served just before, to leave the line: that one is
// running, a few microseconds from returning, unless it was stopped or
// descheduled, and this one's slot must not idle for it.
var aheadLeaveWait = 2 * time.Millisecond

// waitAheadLeft, for a waiter just served, returns once the waiter right
// ahead of it (its last look's) has left the line, or after
// aheadLeaveWait. Two releases a few microseconds apart serve the first
// two waiters in order; without this the second's Acquire may return
// first, as its process happens to run first (1-1.5 % of waits in bench's
// saturated workload, every one less than a millisecond apart). Served
// itself, this waiter was first in line, so the one ahead was served
// before it, or has left.
//
// It costs one F_OFD_GETLK when the one ahead has left already;
// otherwise a goroutine blocks on that one's in-line lock, which wakes it
// the moment the lock is let go (or its holder dies). A blocked lock
// cannot be cancelled: if the one ahead was stopped just as it was
// served, the goroutine and its thread stay until it runs again, so a
// process keeps at most one such goroutine, and while it is blocked the
// check is skipped.
func (t *ticket) waitAheadLeft() {
	if t.aheadFD == 0 {
		return
	}
	fd, name := t.aheadFD-1, t.aheadName
	t.aheadFD, t.aheadName = 0, ""
	if !filelock.InLine(fd, name) || !aheadWaiting.CompareAndSwap(false, true) {
		unix.Close(fd)
		return
	}
	left := make(chan struct{})
	go func() {
		filelock.AwaitNotInLine(fd, name)
		unix.Close(fd)
		aheadWaiting.Store(false)
		close(left)
	}()
	timer := time.NewTimer(aheadLeaveWait)
	defer timer.Stop()
	select {
	case <-left:
	case <-timer.C:
	}
}

// aheadWaiting is set while a goroutine of waitAheadLeft is blocked.
var aheadWaiting atomic.Bool

// poke wakes the waiter behind this one, which watches this spare while
// it is a ticket: a change of its times raises IN_ATTRIB.
func (s *spare) poke() {
	unix.Futimes(int(s.f.Fd()), nil)
}

// serveNext hands g's slot to the first waiter in line, if a release may
// (see serve.go). On true the slot's name is the waiter's file, and g's
// spare has only its own name.
func (g *Guard) serveNext() bool {
	return g.pool.serve(g.id, g.path, g.spare, g.th.seen)
}

// serve renames the first ticket in line over path, slot id's name, which
// must name the spare s: see serve.go for when it may. With throttled
// set (the releaser's grant saw a throttle state), or a pool that has
// one, it serves nobody.
//
// When it does not serve a servable first ticket (the throttle, a max too
// small for the slot, its process stopped), it pokes that ticket: its
// waiter may be first in line without knowing it (it became first when
// the one ahead was served), and so not watching for the delete that
// follows; poked, it looks, and watches from then on.
func (p *Pool) serve(id int, path string, s *spare, throttled bool) bool {
	if !p.waitersPresent() {
		return false
	}
	throttled = throttled || throttle.Exists(p.dir)
	// Releasers that release at once all see the same first ticket: the
	// one that loses the race (its rename finds the ticket gone) serves
	// the next, rather than delete its slot file.
	for range 4 {
		served, again := p.serveFirst(id, path, s, throttled)
		if !again {
			return served
		}
	}
	return false
}

// serveFirst serves the first ticket in line with slot id; again reports
// that the ticket left meanwhile, and the next may be served.
func (p *Pool) serveFirst(id int, path string, s *spare, throttled bool) (served, again bool) {
	qdir := queueDir(p.dir)
	// The first two in arrival order: drafts stand in line too.
	first, second, err := lineFirst(qdir)
	if err != nil {
		return false, false
	}
	if !strings.HasPrefix(first, ticketPrefix) {
		return false, false // nobody, or a ticket still being made comes first
	}
	ticket := filepath.Join(qdir, first)
	max, ns := servedMax(first)
	if max == 0 {
		return false, false // its waiter watches the slots itself
	}
	// From here on, a ticket not served is poked: its waiter may be
	// first in line without knowing it, watching no delete.
	notServed := func() (bool, bool) {
		poke(ticket)
		return false, false
	}
	if throttled || id >= max || ns != self().PidNS || proc.Stopped(ticketPID(first)) {
		return notServed()
	}
	lk, free, err := filelock.TryLockPath(ticket, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, true
		}
		return notServed()
	}
	if free {
		lk.Unlock()
		return false, false // its waiter died: the line removes the ticket
	}
	if !filelock.StillAt(path, s.info) {
		return notServed()
	}
	if err := unix.Rename(ticket, path); err != nil {
		if err == unix.ENOENT {
			return false, true
		}
		return notServed()
	}
	// The waiter behind is now first in line, unwoken. If it may use
	// slots the one served could not (a larger max), some may be free
	// that nobody looks at: wake it (it watches the served waiter's
	// file, now at path).
	if next, _ := servedMax(second); next > max {
		poke(path)
	}
	return true, false
}

// poke changes the times of the file at path (a ticket, or a slot held
// through a served ticket): IN_ATTRIB wakes the waiters that watch it.
func poke(path string) {
	unix.UtimesNanoAt(unix.AT_FDCWD, path, nil, unix.AT_SYMLINK_NOFOLLOW)
}

// dropName releases slot id, held through s: served to the next waiter,
// or its name removed.
func (p *Pool) dropName(id, max int, s *spare) {
	path := slotPath(p.dir, id)
	if p.serve(id, path, s, false) {
		return
	}
	p.markSlot(id, max, false)
	if filelock.StillAt(path, s.info) {
		os.Remove(path)
	}
}
