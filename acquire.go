package llmslots

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/llmslots/llmslots/internal/clock"
	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/watch"
)

// Acquire takes a free slot of the pool's first max, waiting up to wait for
// one. Waiters are served in the order they arrived, across processes: a
// caller that finds others waiting joins the back of the line, even if a
// slot has just freed. With wait 0 it makes one attempt (which, with others
// waiting, fails at once). On success the caller must call Release on the
// returned Guard (defer g.Release()).
//
// When no slot frees within wait it returns an error matching ErrBusy that
// names max, the wait and the holders' pids. max outside 1..MaxSlots and a
// negative wait give an error matching ErrInvalid. A directory that is not
// safe to use gives an error matching ErrUnsafeDir. On any error no slot is
// held.
func (p *Pool) Acquire(max int, wait time.Duration) (*Guard, error) {
	if err := p.usable(); err != nil {
		return nil, err
	}
	if wait < 0 {
		return nil, invalidf("wait must be >= 0, got %v", wait)
	}
	return p.acquire(context.Background(), max, time.Now().Add(wait), wait)
}

// AcquireContext takes a free slot of the pool's first max, waiting until
// one frees or ctx is done. When ctx is done first it returns an error that
// wraps ctx.Err() (errors.Is(err, context.DeadlineExceeded) and so on) and
// holds no slot. If ctx is already done, AcquireContext still makes one
// attempt, as Acquire with wait 0 does, and may succeed.
func (p *Pool) AcquireContext(ctx context.Context, max int) (*Guard, error) {
	if err := p.usable(); err != nil {
		return nil, err
	}
	if ctx == nil {
		return nil, invalidf("AcquireContext needs a non-nil context; use context.Background()")
	}
	return p.acquire(ctx, max, time.Time{}, 0)
}

// acquire is Acquire and AcquireContext: deadline zero means no deadline
// but ctx's; wait is only for the busy message.
func (p *Pool) acquire(ctx context.Context, max int, deadline time.Time, wait time.Duration) (*Guard, error) {
	called := time.Now() // reads the vDSO clock; the queue's clock is read only if we queue
	if err := checkMax(max); err != nil {
		return nil, err
	}
	if g, err := p.reenter(ctx); g != nil || err != nil {
		return g, err // a slot this caller already holds (nested.go)
	}
	if err := p.prepare(); err != nil {
		return nil, err
	}
	var g *Guard
	var err error
	// One spare for the whole acquire, waiting included: a waiter never
	// makes one per wake-up, and one it holds cannot be evicted (and
	// deleted, waking that pool's waiters) by another pool's.
	s := p.takeSpare()
	// The uncontended path: nobody waits, so try the slots at once. With
	// waiters, even a free slot is theirs: go to the back of the line.
	if !p.waitersPresent() {
		g, err = p.tryAcquireFast(max, s) // tryAcquire behind the throttle gate (throttle.go)
	}
	if g == nil && err == nil && (deadline.IsZero() || time.Now().Before(deadline)) && ctx.Err() == nil {
		arrived := clock.Monotonic() - int64(time.Since(called))
		g, err = p.waitInLine(ctx, max, deadline, arrived, s)
	}
	if s != nil && (g == nil || g.spare != s) {
		putSpare(s) // unused: keep it for the next acquire (or discard it if broken)
	}
	switch {
	case g != nil:
		return g, nil
	case errors.Is(err, errNoUsableSlot):
		return nil, p.busyError(max, time.Since(called).Round(time.Millisecond))
	case err == nil && ctx.Err() == nil:
		return nil, p.busyError(max, wait)
	case ctx.Err() != nil && (err == nil || errors.Is(err, ctx.Err())):
		busy := p.busyError(max, time.Since(called).Round(time.Millisecond))
		busy.(*BusyError).Err = ctx.Err()
		return nil, busy
	}
	return nil, err
}

// tryAcquire makes one attempt at the slots and returns the first it
// takes; nil, nil when all are held. It goes in two passes, cheapest
// first: creating a missing slot file costs one system call per slot it
// passes, so the common case (a free slot) never probes a held one; only
// when none is missing does it probe the existing files for a dead
// holder's.
//
// A slot whose path holds something no llmslots process makes (a planted
// symlink, a FIFO) is skipped, so the rest of the pool keeps working; it is
// named in the busy error and logged.
func (p *Pool) tryAcquire(max int, s *spare) (*Guard, error) {
	g, _, err := p.tryAcquireSoon(max, s)
	return g, err
}

// tryAcquireSoon is tryAcquire that also reports soon: a slot looked held
// only because its file is young and empty, and may be reclaimed without
// any event once it is old enough (see freshFileAge). The slot file is
// the spare s (see spare_unix.go), or, with s nil or broken, a new file.
func (p *Pool) tryAcquireSoon(max int, s *spare) (g *Guard, soon bool, err error) {
	now := time.Now()
	if s != nil && !s.broken {
		s.record(p.newRecord(now, max).marshal()) // once, whichever slot it gets
	}
	if max > mapFrom {
		if m := p.slotMap(); m != nil {
			if g, err := p.tryMapped(m, max, s, now); g != nil || err != nil {
				if g != nil {
					p.markSlot(g.id, max, true)
				}
				return g, false, err
			}
		}
	}
	defer func() {
		if g != nil {
			p.markSlot(g.id, max, true)
		}
	}()
	var existing []int
	// In a very large pool, one read of the directory tells which slot
	// files exist: trying to take each held slot in turn costs a system
	// call apiece (512 held slots: 1.4 ms). A name listed is not tried in the
	// first pass but probed in the second, as one that failed to take is.
	var listed map[int]bool
	if max > listFrom {
		listed = p.slotFiles()
	}
	for id := 0; id < max; id++ {
		path := slotPath(p.dir, id)
		if heldHere(path) {
			continue // ours already; no need to ask the filesystem
		}
		if listed[id] {
			existing = append(existing, id)
			continue
		}
		g, exists, err := p.take(id, path, max, s, now)
		if g != nil || err != nil {
			return g, false, err
		}
		if exists {
			existing = append(existing, id)
		}
	}
	unusable := 0
	for _, id := range existing {
		g, fresh, err := p.reclaim(id, slotPath(p.dir, id), max, s, now)
		var bad *badSlotError
		if errors.As(err, &bad) {
			// Once per pool at Warn: a waiter meets it at every look.
			if !p.unusableLogged.Swap(true) {
				p.log().Warn("llmslots: slot unusable", "slot", id, "err", err)
			} else {
				p.log().Debug("llmslots: slot unusable", "slot", id, "err", err)
			}
			unusable++
			continue
		}
		if g != nil || err != nil {
			return g, false, err
		}
		soon = soon || fresh
	}
	if unusable == max {
		return nil, false, errNoUsableSlot
	}
	return nil, soon, nil
}

// take tries to take slot id by giving its path a file: the spare s (see
// spare_unix.go), recorded as taken at now, or, with no usable spare, a
// new file (create). exists reports that the slot file was there already.
func (p *Pool) take(id int, path string, max int, s *spare, now time.Time) (g *Guard, exists bool, err error) {
	if s == nil || s.broken {
		return p.create(id, path, max)
	}
	switch err := s.publish(path); {
	case err == nil:
		g := newGuard(p, id, s.f, s.info, now)
		g.spare, g.max = s, max
		registerGuard(g)
		return g, false, nil
	case errors.Is(err, fs.ErrExist):
		return nil, true, nil
	case linksRefused(err):
		// Make files the classic way from now on.
		p.noLinks.Store(true)
		p.log().Debug("llmslots: no hard links here; creating each slot's file instead", "dir", p.dir, "err", err)
	}
	// Whatever failed (the spare's name or the whole directory is gone,
	// the disk is full), create makes the file the classic way and
	// reports what stops it; s, now broken, is discarded.
	return p.create(id, path, max)
}

// listFrom is the pool size above which an acquire lists the directory
// instead of trying every slot in turn. Listing costs an allocation per
// name: in a pool of 256 with 64 holders it cost more than the 64 failed
// links it saved (go run ./bench -only scale).
const listFrom = 256

// slotFiles returns the ids of the slot files in the pool directory; nil
// if it cannot be read (then every slot is tried).
func (p *Pool) slotFiles() map[int]bool {
	d, err := os.Open(p.dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil
	}
	ids := make(map[int]bool, len(names))
	for _, n := range names {
		if id := parseSlotName(n); id >= 0 {
			ids[id] = true
		}
	}
	return ids
}

// errNoUsableSlot reports that every slot below max holds what no
// llmslots process makes: nothing can free such a slot, so waiting is
// pointless and the acquire fails at once with the busy error naming them.
var errNoUsableSlot = errors.New("no usable slot")

// badSlotError reports a slot path that holds what no llmslots process
// makes.
type badSlotError struct{ msg string }

func (e *badSlotError) Error() string { return e.msg }

// testHookBeforeLock, when set by a test, runs between creating a slot
// file and locking it: the window of the unlink race.
var testHookBeforeLock func(path string)

// create tries to take slot id by creating its file: exists reports that
// the file was there already.
//
// A slot is only ever held through a file its holder created: an existing
// file is probed (see reclaim) and, if its holder is dead, deleted under
// its lock and created anew. That leaves one window, between creating and
// locking, in which a prober may take the new file for a dead holder's and
// delete it (the unlink race: the creator would then lock a file with no
// name while another process creates and locks a new one). So after
// locking, create checks that its file still has a name, and starts over
// if not.
func (p *Pool) create(id int, path string, max int) (g *Guard, exists bool, err error) {
	// A few rounds suffice: each restart means another process made
	// progress on this slot; if it keeps changing, report it busy.
	for range 4 {
		// In a group's pool the file is made under a hidden name, locked,
		// and linked to path (see newFile): it is seen with its final mode
		// and locked from the start, so the unlink race cannot happen.
		f, at, err := p.newFile(path, "slot", !p.noLinks.Load())
		if errors.Is(err, fs.ErrExist) {
			return nil, true, nil
		}
		if err != nil {
			if err := p.openFailed(path, err); err != nil {
				return nil, false, err
			}
			continue
		}
		drop := func() {
			if at != path {
				os.Remove(at)
			}
			f.Close()
		}
		if testHookBeforeLock != nil {
			testHookBeforeLock(path)
		}
		ok, err := filelock.TryLock(f)
		if err != nil || !ok {
			drop() // a prober has it this instant: busy
			return nil, false, err
		}
		fi, err := f.Stat()
		if err != nil {
			drop()
			return nil, false, fmt.Errorf("llmslots: %w", err)
		}
		if at != path {
			switch err := publishNew(at, path, fi); {
			case errors.Is(err, fs.ErrExist):
				drop()
				return nil, true, nil
			case errors.Is(err, errLinks):
				// Make files in place from now on (and use no spares).
				p.noLinks.Store(true)
				p.log().Debug("llmslots: no hard links here; creating each slot's file in place", "dir", p.dir, "err", err)
				drop()
				continue
			case err != nil:
				drop()
				if err := p.openFailed(path, err); err != nil {
					return nil, false, err
				}
				continue
			}
			if fi, err = f.Stat(); err != nil {
				f.Close()
				return nil, false, fmt.Errorf("llmslots: %w", err)
			}
		}
		// On a network filesystem a file deleted while open may be
		// renamed (NFS's .nfsXXXX) and keep its link: check the path.
		if !filelock.Linked(fi) || p.netfs.Load() && !filelock.StillAt(path, fi) {
			f.Close() // deleted under us: see above
			continue
		}
		return p.hold(id, path, max, f, fi), false, nil
	}
	return nil, false, nil
}

// reclaim takes slot id if its file belongs to a dead holder: it deletes
// the file under its lock and creates it anew. fresh reports a slot held
// only because its file is young and empty.
func (p *Pool) reclaim(id int, path string, max int, s *spare, now time.Time) (g *Guard, fresh bool, err error) {
	res, err := probe(path, probeReclaim)
	if err != nil {
		return nil, false, err
	}
	switch {
	case res.state == StateInvalid:
		return nil, false, &badSlotError{fmt.Sprintf("llmslots: slot file %s is %s", path, res.detail)}
	case res.state == StateHeld:
		return nil, res.detail == freshDetail, nil
	case res.removed:
		p.log().Debug("llmslots: reclaimed slot of a dead holder", "slot", id, "dir", p.dir,
			"dead_pid", res.rec.PID, "since", res.rec.Since)
	case res.state == StateStale:
		return nil, false, nil // judged dead by pid alone: not ours to delete
	}
	g, _, err = p.take(id, path, max, s, now)
	return g, false, err
}

// openFailed explains a failed create; nil means "try again" (the
// directory was removed while in use, and has been made again).
func (p *Pool) openFailed(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return p.remake()
	}
	return fmt.Errorf("llmslots: cannot create slot file: %w", err)
}

// hold writes this process's record into the locked file f and returns its
// Guard. A failed write (a full disk) leaves the slot held, since the lock
// and not the record is what holds it; it is logged and status shows the
// holder as unknown.
func (p *Pool) hold(id int, path string, max int, f *os.File, fi fs.FileInfo) *Guard {
	now := time.Now()
	if _, err := f.Write(p.newRecord(now, max).marshal()); err != nil {
		p.log().Warn("llmslots: slot held, but its record was not written", "slot", id, "path", path, "err", err)
	}
	g := newGuard(p, id, f, fi, now)
	g.max = max
	registerGuard(g)
	return g
}

// busyError builds the ErrBusy error, naming who holds the slots (as
// their records say: it takes no lock, so it cannot disturb anyone) and
// any slot that cannot be used.
func (p *Pool) busyError(max int, wait time.Duration) error {
	e := &BusyError{Dir: p.dir, Max: max, Wait: wait}
	e.Holders, e.Unusable = p.recordedHolders(max)
	return e
}

// waitInLine is the one waiting loop. It takes a ticket, then: at the head
// of the queue, it watches the slots and tries them; behind someone, it
// watches the ticket ahead. Each wake-up starts the look afresh. It
// returns a guard, an error, nil, nil when deadline (if not zero) passed,
// or nil, ctx.Err() when ctx ended. The ticket is gone when it returns,
// whatever the outcome, so cancellation leaves the queue clean.
func (p *Pool) waitInLine(ctx context.Context, max int, deadline time.Time, arrived int64, s *spare) (g *Guard, err error) {
	started := time.Now()
	w := watch.New(p.netfs.Load())
	// A waiter that watches file events and has a spare takes a ticket a
	// releaser may hand its slot to (serve.go).
	ts := s
	if !w.Events() {
		ts = nil
	}
	t, err := p.enqueue(arrived, max, ts)
	if errors.Is(err, fs.ErrNotExist) {
		// The queue directory, or the whole pool directory, was removed
		// while this Pool was in use: make it again, as create does.
		if err = p.remake(); err == nil {
			t, err = p.enqueue(arrived, max, ts)
		}
	}
	if err != nil {
		w.Close()
		return nil, err
	}
	if t.spare != nil {
		// For the whole wait: the rename that serves this waiter, and
		// holders that die, since it may become first in line unwoken.
		// A pool directory removed meanwhile is made again by the loop,
		// as for any waiter; this one's ticket is then lost with it.
		w.Keep(p.watchDir(), t.path())
	}
	stopProgress := p.watchProgress(max, started, t.name)
	defer stopProgress()
	p.warnOtherMax(max)
	defer func() {
		w.Close()
		if g != nil && t.renamed() {
			t.waitAheadLeft() // returns in the order slots were given
		}
		if g != nil && !t.renamed() {
			// Took a slot itself: hand the slot to the caller first and
			// wake the next waiter just after. Deleting the ticket wakes it, and on a busy
			// machine it may preempt this process before the caller even
			// sees its slot. Until then the ticket stays locked; Release
			// waits for it, and if the process dies first the kernel's
			// close wakes the next waiter instead.
			left := make(chan struct{})
			g.leftQueue = left
			go func() {
				t.leave()
				close(left)
			}()
			return
		}
		// A ticket renamed into a slot has no name left to remove, and
		// the waiter behind does not watch for the rename: leaving is a
		// lock released, done here rather than by a goroutine whose
		// start wakes another thread at every handoff.
		if testHookWaitEnded != nil && g == nil {
			testHookWaitEnded()
		}
		t.leave()
	}()
	var freeSince time.Time // when the waiter second in line saw a free slot
	slots := make([]string, max)
	for id := range slots {
		slots[id] = slotPath(p.dir, id)
	}
	for {
		w.Reset()
		if t.spare != nil {
			// Events read from here on are read before the look at the
			// ticket: a rename after it stays queued for the next wait.
			sawSlots := w.SawSlots()
			w.OnlySlots()
			// Its own ticket is looked at only when its watch says it may
			// have moved (always, the first time, and at the safety
			// re-check): a waiter woken for anything else saves the lstat.
			id := -1
			if w.OwnMoved() {
				id = t.served()
			}
			if id >= 0 {
				g := p.servedGuard(id, max, t.spare)
				// A freed slot this waiter saw since its last look was
				// left to it, or to one ahead that is gone now: the
				// waiter behind must look instead.
				if sawSlots || w.SawSlots() {
					t.spare.poke()
				}
				if g = p.recheck(g, max); g != nil {
					return g, nil
				}
				// The throttle gate gave it back: in line again, watched
				// again (the watch of its own ticket may never have been
				// set, if it was served before Keep).
				t.rejoin()
				w.Keep(p.watchDir(), t.path())
				continue
			}
		}
		wake := deadline // when to look again without an event
		earlier := func(at time.Time) {
			if wake.IsZero() || at.Before(wake) {
				wake = at
			}
		}
		ahead, err := t.ahead(w)
		if err != nil {
			return nil, err
		}
		if ahead.fresh {
			// No event comes if the draft's maker died before locking it:
			// look again when the draft is old enough to be judged.
			earlier(time.Now().Add(freshFileAge))
		}
		if ahead.path == "" || ahead.head {
			// Watch before trying: a slot freed after the try still
			// wakes us. (A servable waiter's kept watch of the pool
			// directory, which sees only holders that die, now sees
			// every freed slot until it leaves.)
			if err := w.WatchSlots(p.watchDir(), slots); errors.Is(err, fs.ErrNotExist) {
				// The pool directory was removed while we waited (our
				// ticket with it): make it again and look afresh. The
				// lock on each slot still decides; only the order of
				// this wait is lost.
				if err := p.remake(); err != nil {
					return nil, err
				}
				continue
			} else if err != nil {
				return nil, err
			}
		}
		switch {
		case ahead.path == "":
			g, soon, err := p.tryAcquireGated(max, s, earlier) // throttle.go
			if g != nil || err != nil {
				return g, err
			}
			if soon {
				// No event will come when a young empty file grows old
				// enough to reclaim: look again then.
				earlier(time.Now().Add(freshFileAge))
			}
		case ahead.head:
			// Second in line: a head that does not take a free slot (it
			// is stopped: SIGSTOP, Ctrl-Z; or starved) must not hold up
			// the line. A slot seen free for stallAfter is taken from it;
			// the head, once it runs again, is served as usual.
			if !p.slotFree(max) {
				freeSince = time.Time{}
				earlier(time.Now().Add(stallAfter)) // a dead holder's slot raises no event here
				break
			}
			if freeSince.IsZero() {
				freeSince = time.Now()
			}
			if time.Since(freeSince) < stallAfter {
				earlier(freeSince.Add(stallAfter))
				break
			}
			g, _, err := p.tryAcquireGated(max, s, earlier)
			if g != nil || err != nil {
				if g != nil {
					p.log().Debug("llmslots: took a slot the head of the line left free", "slot", g.id, "dir", p.dir, "head", filepath.Base(ahead.path))
				}
				return g, err
			}
			freeSince = time.Time{}
		default:
			freeSince = time.Time{}
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return nil, nil
		}
		if why := w.Fallback(); why != nil && !p.pollLogged.Swap(true) {
			p.log().Warn("llmslots: waiting by polling, as on platforms without inotify", "dir", p.dir, "err", why)
		}
		for {
			if err := w.Wait(ctx, wake); err != nil {
				return nil, err
			}
			if !nothingNew(t, w, ahead, wake) {
				break
			}
		}
	}
}

// nothingNew reports a wake-up with nothing for this waiter to look at: it
// is behind others and served tickets, whose waiters all watch the pool
// directory for holders that die, and was woken by that alone, while the
// ticket ahead is still in line. The first in line sees to the freed
// slot; this one waits on, at the cost of one lstat, so a death does not
// make every waiter read the whole line.
func nothingNew(t *ticket, w watch.Watcher, ahead aheadOf, wake time.Time) bool {
	if t.spare == nil || ahead.path == "" || ahead.head || !wake.IsZero() && !time.Now().Before(wake) {
		return false
	}
	// No event at all (the safety re-check) is a reason to look.
	// Events of the pool directory are the first in line's to see to.
	if !w.SawSlots() || !w.OnlySlots() {
		return false
	}
	_, err := os.Lstat(ahead.path)
	return err == nil
}

// testHookWaitEnded, when set by a test, runs when a wait ends without a
// slot, just before the waiter leaves the line: the instant a release may
// still serve it.
var testHookWaitEnded func()

// stallAfter is how long a free slot may stay untaken by the head of the
// line before the waiter behind it takes it.
const stallAfter = time.Second

// slotFree reports whether some slot below max looks free to the waiter
// second in line: its file is missing, or its holder is dead (the file is
// then removed, under its lock, as any acquirer would reclaim it).
func (p *Pool) slotFree(max int) bool {
	var existing []int
	for id := range max {
		if _, err := os.Lstat(slotPath(p.dir, id)); errors.Is(err, fs.ErrNotExist) {
			return true
		}
		existing = append(existing, id)
	}
	for _, id := range existing {
		if res, err := probe(slotPath(p.dir, id), probeRemove); err == nil && (res.removed || res.state == StateFree) {
			return true
		}
	}
	return false
}

// warnOtherMax logs, once per pool and process, a warning when a holder
// or waiter recorded a max other than max: processes that disagree on a
// pool's size each enforce their own, so the larger one decides. It reads
// records only (no lock is tried), at the first wait, where a look at the
// slots costs nothing against the wait itself.
func (p *Pool) warnOtherMax(max int) {
	if p.maxChecked.Swap(true) {
		return
	}
	var paths []string
	if entries, err := os.ReadDir(p.dir); err == nil {
		for _, e := range entries {
			if parseSlotName(e.Name()) >= 0 {
				paths = append(paths, filepath.Join(p.dir, e.Name()))
			}
		}
	}
	if names, err := queueNames(queueDir(p.dir), ticketPrefix); err == nil {
		for _, n := range names {
			paths = append(paths, filepath.Join(queueDir(p.dir), n))
		}
	}
	for _, path := range paths {
		if rec, err := readRecord(path); err == nil && rec.Max > 0 && rec.Max != max {
			p.log().Warn("llmslots: processes use this pool with different max values; each enforces its own",
				"dir", p.dir, "max", max, "other_max", rec.Max, "other_pid", rec.PID, "file", filepath.Base(path))
			return
		}
	}
}

// remake creates the pool's directory and queue again after they were
// removed while in use.
func (p *Pool) remake() error {
	p.ready.Store(false)
	return p.prepare()
}
