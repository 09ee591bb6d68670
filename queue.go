package llmslots

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/watch"
)

// The queue makes waiting fair across processes. A process that finds no
// free slot, or finds others already waiting, takes a ticket: a file in
// the pool's .queue directory, locked exclusively for as long as it waits,
// whose name sorts by arrival (machine-wide monotonic clock, then pid, then
// a per-process sequence). Only the head of the queue tries the slots;
// every other waiter watches just the ticket ahead of it. So a release
// wakes one process, a departure wakes one process, and a process that
// releases and at once asks again goes to the back.
//
// A ticket whose lock is free belongs to a waiter that died: the waiter
// behind it removes it and moves up, so a dead waiter never blocks the
// queue. Every waiter also marks .queue/waiters with a lock (see
// markWaiting); the uncontended path asks whether any mark is there, on a
// descriptor kept open, and takes no ticket.
const (
	queueDirName    = ".queue" // a dot: no pool name may start with one
	waitersFileName = "waiters"
	ticketPrefix    = "t-" // a ticket in line
	draftPrefix     = "n-" // a ticket being made: locked and recorded, then renamed
)

var ticketSeq atomic.Uint64

// ticketName orders tickets by arrival: fixed-width decimal fields, so the
// names sort as the numbers do.
func ticketName(arrived int64) string {
	return fmt.Sprintf("%020d-%010d-%06d", arrived, self().PID, ticketSeq.Add(1)%1_000_000) // self: no getpid per ticket
}

// A ticket is one waiter's place in line.
type ticket struct {
	dir  string   // the queue directory
	name string   // its file name, with ticketPrefix
	file *os.File // the ticket, locked exclusively (nil: a served ticket's spare holds the lock)
	// spare, for a ticket a releaser may hand its slot to, is the spare
	// whose second name the ticket is (see serve.go); serving is what
	// such a ticket's waiter keeps (serve_linux.go).
	spare *spare
	serving
	waiters *os.File   // .queue/waiters, locked shared
	marked  bool       // the waiters file carries this waiter's mark
	marks   *idleMarks // where waiters goes, unmarked, when the waiter leaves
}

func queueDir(poolDir string) string { return filepath.Join(poolDir, queueDirName) }

// enqueue takes a ticket for a waiter that arrived at arrived (monotonic
// nanoseconds). The ticket appears under its final name only once it is
// locked and recorded, so no other process can ever see it unlocked and
// take it for a dead waiter's.
//
// With s, a spare of a waiter that watches for file events, the ticket is
// a second name of s, which releasers may rename into their slot (see
// serve.go); if that name cannot be made, the ticket is a file of its own.
func (p *Pool) enqueue(arrived int64, max int, s *spare) (*ticket, error) {
	qdir := queueDir(p.dir)
	waiters, err := p.idleMarks.open(qdir)
	if err != nil {
		return nil, fmt.Errorf("llmslots: cannot join the queue: %w", err)
	}
	// The mark is tried, never waited for: any process that may write
	// the waiters file (in a group's pool, every member) can hold a lock
	// that keeps it off for as long as it likes. A waiter not yet marked
	// tries again at each look at the line (ahead); the queue's order
	// never needs the mark, only the uncontended path's check does, and
	// a lock in the way makes that check see waiters anyway.
	marked, err := filelock.MarkWaiting(waiters)
	for try := 0; err == nil && !marked && try < 4; try++ {
		time.Sleep(time.Duration(100<<try) * time.Microsecond)
		marked, err = filelock.MarkWaiting(waiters)
	}
	if err != nil {
		waiters.Close()
		return nil, fmt.Errorf("llmslots: cannot join the queue: %w", err)
	}
	t := &ticket{dir: qdir, waiters: waiters, marked: marked, marks: &p.idleMarks}
	if s != nil && p.servedTicket(t, arrived, max, s) {
		return t, nil
	}
	name := ticketName(arrived)
	f, err := p.makeTicket(qdir, name, max)
	for try := 0; errors.Is(err, fs.ErrNotExist) && try < 3; try++ {
		// The draft was deleted before it was renamed into line: a cleanup
		// in another pid namespace took its creator for dead. Again, with
		// the same arrival time and a new sequence number.
		name = ticketName(arrived)
		f, err = p.makeTicket(qdir, name, max)
	}
	if err != nil {
		t.unmark()
		return nil, fmt.Errorf("llmslots: cannot take a ticket: %w", err)
	}
	t.name, t.file = ticketPrefix+name, f
	return t, nil
}

// makeTicket makes the draft ticket, locks and records it, and renames it
// into line. In a group's pool the draft is made under a hidden name,
// with its final mode, and renamed to its draft name once locked (see
// newFile): another member never meets it unlocked or unreadable.
func (p *Pool) makeTicket(qdir, name string, max int) (*os.File, error) {
	draft := filepath.Join(qdir, draftPrefix+name)
	f, at, err := p.newFile(draft, "ticket", true)
	if err != nil {
		return nil, err
	}
	// The draft is this process's own, made a moment ago; a lock on it
	// can only be another process's look, which lets go at once.
	var ok bool
	for try := 0; ; try++ {
		if ok, err = filelock.TryLock(f); err != nil || ok || try == 20 {
			break
		}
		time.Sleep(time.Duration(try+1) * 50 * time.Microsecond)
	}
	if err == nil && !ok {
		err = errors.New("draft ticket locked by another process")
	}
	if err == nil && at != draft {
		// The name holds this process's pid and sequence number: no
		// other process makes it, so a plain rename cannot replace one.
		err = filelock.Rename(at, draft)
	}
	if err == nil {
		_, err = f.Write(p.newRecord(time.Now(), max).marshal())
	}
	if err == nil {
		err = filelock.Rename(draft, filepath.Join(qdir, ticketPrefix+name))
	}
	if err != nil {
		if at != draft {
			os.Remove(at)
		}
		os.Remove(draft)
		f.Close()
		return nil, err
	}
	return f, nil
}

// mark tries again to mark the waiters file, if enqueue could not.
func (t *ticket) mark() {
	if !t.marked {
		t.marked, _ = filelock.MarkWaiting(t.waiters)
	}
}

func (t *ticket) path() string { return filepath.Join(t.dir, t.name) }

// leave deletes the ticket while still holding its lock (so the waiter
// behind sees it gone, never "dead"), then drops it. The waiters mark goes
// first: deleting the ticket wakes the next waiter, which may preempt this
// process, so as little as possible is left to do after it.
func (t *ticket) leave() {
	t.unmark()
	if t.spare != nil {
		t.leaveServed()
		return
	}
	os.Remove(t.path())
	t.file.Close()
}

// aheadOf is what a waiter sees ahead of it in line.
type aheadOf struct {
	path  string // the live ticket right ahead; "" when t heads the queue
	head  bool   // that ticket is first in line: t is second
	fresh bool   // that ticket is a young, empty draft, held for now only by its age
}

// ahead finds the live ticket right ahead of t and asks w to watch it.
// Dead tickets it meets are removed.
// The watch is set before the liveness check, so a death right after the
// check still wakes the waiter.
//
// Drafts stand in line too, by the same arrival key: a waiter that arrived
// earlier but is still making its ticket (descheduled, on a busy machine)
// is not overtaken by one that arrived later and was quicker.
func (t *ticket) ahead(w watch.Watcher) (aheadOf, error) {
	t.mark()
	// One read of the directory, which runs at every wake-up of every
	// waiter: the few tickets right ahead, nearest first. Only if every
	// one of those is gone or dead is the line read again, from there.
	near, first, more, err := lineAhead(t.dir, t.name[len(ticketPrefix):])
	if err != nil {
		return aheadOf{}, err
	}
	for i := 0; ; i++ {
		if i == len(near) {
			if !more {
				t.dropAhead()
				return aheadOf{}, nil
			}
			from := near[len(near)-1][len(ticketPrefix):]
			if near, first, more, err = lineAhead(t.dir, from); err != nil {
				return aheadOf{}, err
			}
			if i = 0; len(near) == 0 {
				t.dropAhead()
				return aheadOf{}, nil
			}
		}
		name := near[i]
		path := filepath.Join(t.dir, name)
		// A served ticket is renamed into a slot: a servable waiter behind
		// it is not woken for that (serve.go), but one with a ticket of
		// its own must be, as it watches nothing else that would tell it
		// it is first.
		if err := w.WatchTicket(path, t.spare == nil || !servable(name)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // left already, or renamed into line: seen below
			}
			if !errors.Is(err, fs.ErrPermission) {
				return aheadOf{}, err
			}
			// A ticket this waiter may not read (another member's, made
			// by an older version or by hand): watch the whole queue
			// directory instead, which its departure or its waiter's
			// death also wakes, if less selectively.
			if err := w.WatchSlots(t.dir, nil); err != nil {
				return aheadOf{}, err
			}
		}
		res, err := probeNamed(path, probeReclaim)
		if err != nil {
			return aheadOf{}, err
		}
		if res.state == StateHeld {
			if t.spare != nil && servable(name) {
				t.keepAhead(path)
			} else {
				t.dropAhead()
			}
			return aheadOf{path: path, head: name == first, fresh: res.detail == freshDetail}, nil
		}
		w.Reset() // gone, or dead and now removed: look further ahead
	}
}

// hasTickets reports whether the queue holds any ticket, live or not.
func hasTickets(qdir string) bool {
	names, err := queueNames(qdir, ticketPrefix)
	return err != nil || len(names) > 0
}

// queueNames lists the queue directory's names with any of prefixes,
// sorted.
func queueNames(qdir string, prefixes ...string) ([]string, error) {
	all, err := filelock.Names(qdir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // gone, or removed between the open and the read
	}
	if err != nil {
		return nil, fmt.Errorf("llmslots: %w", err)
	}
	names := all[:0]
	for _, n := range all {
		for _, prefix := range prefixes {
			if strings.HasPrefix(n, prefix) {
				names = append(names, n)
				break
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

// WaiterStatus describes one waiting process, in queue order.
type WaiterStatus struct {
	// Position is 1 for the head of the queue.
	Position int    `json:"position"`
	PID      int    `json:"pid"`
	Host     string `json:"host"`
	// Since is when the waiter joined the queue.
	Since      time.Time `json:"since,omitzero"`
	WaitedSecs float64   `json:"waited_secs"`
	Label      string    `json:"label"`
	Command    string    `json:"command"`
	Path       string    `json:"path"`
	// Max is the max the waiter asked with; 0 when unknown.
	Max int `json:"max,omitempty"`
}

// readQueue lists the live waiters in order, and counts dead tickets,
// removing them when remove is set.
func readQueue(poolDir string, remove bool) (live []WaiterStatus, dead []WaiterStatus, err error) {
	qdir := queueDir(poolDir)
	mode := probeLook
	if remove {
		mode = probeRemove
	}
	now := time.Now()
	for _, prefix := range []string{draftPrefix, ticketPrefix} {
		names, err := queueNames(qdir, prefix)
		if err != nil {
			return nil, nil, err
		}
		for _, n := range names {
			path := filepath.Join(qdir, n)
			res, err := probeNamed(path, mode)
			if err != nil {
				return nil, nil, err
			}
			if res.state == StateFree || prefix == draftPrefix && res.state == StateHeld {
				continue // gone, or still being made
			}
			ws := WaiterStatus{PID: res.rec.PID, Host: res.rec.Host, Label: res.rec.Label, Command: res.rec.Command, Path: path, Max: res.rec.Max}
			if !res.rec.Since.IsZero() {
				ws.Since, ws.WaitedSecs = res.rec.Since, now.Sub(res.rec.Since).Seconds()
			}
			if res.state == StateHeld {
				ws.Position = len(live) + 1
				live = append(live, ws)
			} else {
				dead = append(dead, ws)
			}
		}
	}
	return live, dead, nil
}

// RemoveDeadWaiters removes the tickets of waiters that died while
// waiting and returns their pids (0 where none was recorded). It also
// removes, without reporting them, the spare slot files of processes that
// are gone (see the package documentation). The queue never needs it (the waiter behind a dead
// ticket removes it, and the next process to make a spare sweeps the dead
// ones); it is for tidy directories.
func (p *Pool) RemoveDeadWaiters() ([]int, error) {
	if err := p.usable(); err != nil {
		return nil, err
	}
	if exists, err := inspectDir(p.dir, p.group); err != nil || !exists {
		return []int{}, err
	}
	_, dead, err := readQueue(p.dir, true)
	if err != nil {
		return nil, err
	}
	sweepSpares(p.dir)
	sweepNewborn(p.dir)
	sweepNewborn(queueDir(p.dir))
	pids := []int{}
	for _, d := range dead {
		pids = append(pids, d.PID)
	}
	return pids, nil
}
