// Package line makes waiting fair across processes: waiters are served in
// the order they arrived, through a line of ticket files in a pool's queue
// directory, and each waits on a lock, so an idle waiter costs nothing.
//
// A process that finds no free slot, or finds others already waiting,
// takes a ticket: a file locked exclusively for as long as it waits, whose
// name sorts by arrival (machine-wide monotonic clock, then pid, then a
// per-process sequence). Only the first in line tries the slots; every
// other waiter waits on the lock of the ticket right ahead of it. So a
// release wakes the first in line, a departure wakes the one behind, and a
// process that releases and at once asks again goes to the back.
//
// A ticket whose lock is free belongs to a waiter that died: the waiter
// behind it removes it and moves up, so a dead waiter never blocks the
// line.
package line

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/slotfile"
)

// A Line is a pool's queue directory and how its files are made.
type Line struct {
	Dir   string // the queue directory (slotfile.QueueDir in the pool's)
	Maker slotfile.Maker
}

// A Ticket is one waiter's place in line.
type Ticket struct {
	line Line
	name string   // its file name, with slotfile.TicketPrefix
	file *os.File // the ticket, locked exclusively
}

var ticketSeq atomic.Uint64

// key orders tickets by arrival: fixed-width decimal fields, so the names
// sort as the numbers do.
func key(arrived int64, pid int) string {
	return fmt.Sprintf("%020d-%010d-%06d", arrived, pid, ticketSeq.Add(1)%1_000_000)
}

// Join takes a ticket for a waiter that arrived at arrived (machine-wide
// monotonic nanoseconds), recording rec in it. The ticket appears under its
// final name only once it is locked and recorded, so no other process can
// ever see it unlocked and take it for a dead waiter's.
func (l Line) Join(arrived int64, rec []byte) (*Ticket, error) {
	var err error
	// A draft deleted before it was renamed into line (a cleanup in
	// another pid namespace took its creator for dead) is made again,
	// with the same arrival time and a new sequence number.
	for range 3 {
		k := key(arrived, os.Getpid())
		var f *os.File
		if f, err = l.make(k, rec); err == nil {
			return &Ticket{line: l, name: slotfile.TicketPrefix + k, file: f}, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	return nil, fmt.Errorf("llmslots: cannot take a ticket: %w", err)
}

// make makes the draft ticket, locks and records it, and renames it into
// line. In a group's pool the draft is made under a hidden name with its
// final mode, and renamed to its draft name once locked (see
// slotfile.Maker.New): another member never meets it unlocked or
// unreadable.
func (l Line) make(k string, rec []byte) (*os.File, error) {
	draft := filepath.Join(l.Dir, slotfile.DraftPrefix+k)
	f, at, err := l.Maker.New(draft, "ticket")
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
		err = os.Rename(at, draft)
	}
	if err == nil {
		_, err = f.Write(rec)
	}
	if err == nil {
		err = os.Rename(draft, filepath.Join(l.Dir, slotfile.TicketPrefix+k))
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

// Name is the ticket's file name.
func (t *Ticket) Name() string { return t.name }

// Leave deletes the ticket while still holding its lock (so the waiter
// behind sees it gone, never dead), then drops the lock, which wakes that
// waiter.
func (t *Ticket) Leave() {
	os.Remove(filepath.Join(t.line.Dir, t.name))
	t.file.Close()
}

// names lists the queue directory's tickets and drafts, sorted by arrival
// (drafts stand in line by the same key: a waiter that arrived earlier but
// is still making its ticket is not overtaken by a quicker later one).
func (l Line) names() ([]string, error) {
	d, err := os.Open(l.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("llmslots: %w", err)
	}
	defer d.Close()
	all, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("llmslots: %w", err)
	}
	names := all[:0]
	for _, n := range all {
		if strings.HasPrefix(n, slotfile.TicketPrefix) || strings.HasPrefix(n, slotfile.DraftPrefix) {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool { return names[i][2:] < names[j][2:] })
	return names, nil
}

// Empty reports whether nobody waits: the queue directory holds no ticket
// or draft, live or not. It is the uncontended acquire's one look, and
// reads a single name; an error counts as someone waiting.
func (l Line) Empty() bool {
	d, err := os.Open(l.Dir)
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(8)
		for _, n := range names {
			if strings.HasPrefix(n, slotfile.TicketPrefix) || strings.HasPrefix(n, slotfile.DraftPrefix) {
				return false
			}
		}
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// ahead finds the live ticket right ahead of t: its path ("" when t is
// first in line) and whether it is first (t second; a dead ticket still
// ahead of it is seen to by its own waiter, whom the death woke). Dead tickets it meets
// are removed. The caller waits on the lock of what it returns, and looks
// again when woken.
func (t *Ticket) ahead() (path string, first bool, err error) {
	names, err := t.line.names()
	if err != nil {
		return "", false, err
	}
	mine := t.name[2:]
	i := sort.Search(len(names), func(i int) bool { return names[i][2:] >= mine })
	for i--; i >= 0; i-- {
		path := filepath.Join(t.line.Dir, names[i])
		res, err := slotfile.ProbeNamed(path, slotfile.Remove)
		if err != nil {
			return "", false, err
		}
		if res.State == slotfile.Held {
			return path, i == 0, nil
		}
		// Gone, or dead and now removed: look further ahead.
	}
	return "", false, nil
}

// A Waiter is one ticket as Waiters reports it.
type Waiter struct {
	Path string
	Rec  slotfile.Record
	Live bool
}

// Waiters lists the tickets in arrival order, live ones and dead ones, and
// removes the dead ones when remove is set. Drafts still being made are
// left out.
func (l Line) Waiters(remove bool) ([]Waiter, error) {
	names, err := l.names()
	if err != nil {
		return nil, err
	}
	mode := slotfile.Look
	if remove {
		mode = slotfile.Remove
	}
	var out []Waiter
	for _, n := range names {
		path := filepath.Join(l.Dir, n)
		res, err := slotfile.ProbeNamed(path, mode)
		if err != nil {
			return nil, err
		}
		draft := strings.HasPrefix(n, slotfile.DraftPrefix)
		if res.State == slotfile.Free || draft && res.State == slotfile.Held {
			continue // gone, or still being made
		}
		out = append(out, Waiter{Path: path, Rec: res.Rec, Live: res.State == slotfile.Held})
	}
	return out, nil
}

// Ahead counts the tickets and drafts ahead of the ticket named name,
// without probing them: the progress a waiter reports.
func (l Line) Ahead(name string) int {
	names, _ := l.names()
	n := 0
	for _, other := range names {
		if other[2:] < name[2:] {
			n++
		}
	}
	return n
}
