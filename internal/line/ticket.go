// Package line makes waiting fair across processes: waiters are served in
// arrival order through ticket files in a pool's queue directory, each
// locked exclusively while its waiter waits and named to sort by arrival
// (machine-wide monotonic clock, pid, sequence). Only the first in line
// tries the slots; every other waiter waits on the lock of the ticket right
// ahead: an idle waiter costs nothing, a release wakes the first, a
// departure the one behind, and one who releases and asks again goes to the
// back. A ticket whose lock is free is a dead waiter's: the one behind
// removes it.
package line

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

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

// Join takes a ticket for a waiter that arrived at arrived (machine-wide
// monotonic nanoseconds), recording rec in it. It is named only once
// locked and recorded, so nobody takes it for a dead waiter's; a draft
// removed meanwhile (its maker taken for dead) is made again.
func (l Line) Join(arrived int64, rec []byte) (*Ticket, error) {
	var err error
	for range 3 {
		// Fixed-width fields: the names sort as the numbers do.
		k := fmt.Sprintf("%020d-%010d-%06d", arrived, os.Getpid(), ticketSeq.Add(1)%1_000_000)
		var f *os.File
		if f, err = l.make(k, rec); err == nil {
			return &Ticket{line: l, name: slotfile.TicketPrefix + k, file: f}, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	return nil, fmt.Errorf("llmslots: cannot take a ticket: %w", err)
}

// make makes the draft ticket (in a group's pool under a hidden name: see
// slotfile.Maker.New), locks and records it, and renames it into line.
func (l Line) make(k string, rec []byte) (*os.File, error) {
	f, at, err := l.Maker.New(filepath.Join(l.Dir, slotfile.DraftPrefix+k), "ticket")
	if err != nil {
		return nil, err
	}
	ok, err := filelock.TryLock(f)
	if err == nil && !ok {
		// Probers lock a young empty draft only to remove it: as good as gone.
		err = fs.ErrNotExist
	}
	if err == nil {
		_, err = f.Write(rec)
	}
	if err == nil {
		// Nobody else makes this name (pid, sequence): a plain rename.
		err = os.Rename(at, filepath.Join(l.Dir, slotfile.TicketPrefix+k))
	}
	if err != nil {
		os.Remove(at)
		f.Close()
		return nil, err
	}
	return f, nil
}

// Name is the ticket's file name.
func (t *Ticket) Name() string { return t.name }

// Leave deletes the ticket while still holding its lock (so the waiter
// behind sees it gone, never dead), then drops the lock, which wakes it.
func (t *Ticket) Leave() {
	os.Remove(filepath.Join(t.line.Dir, t.name))
	t.file.Close()
}

// names lists the tickets and drafts, sorted by arrival: a draft stands in
// line, so a waiter still making its ticket is not overtaken.
func (l Line) names() ([]string, error) {
	all, err := os.ReadDir(l.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("llmslots: %w", err)
	}
	var names []string
	for _, e := range all {
		if n := e.Name(); strings.HasPrefix(n, slotfile.TicketPrefix) || strings.HasPrefix(n, slotfile.DraftPrefix) {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool { return names[i][2:] < names[j][2:] })
	return names, nil
}

// Empty reports whether nobody waits: the queue directory holds no ticket
// or draft, live or not. An error counts as someone waiting.
func (l Line) Empty() bool {
	names, err := l.names()
	return err == nil && len(names) == 0
}

// Ahead counts the tickets and drafts ahead of the ticket named name,
// without probing them: the progress a waiter reports.
func (l Line) Ahead(name string) int {
	names, _ := l.names()
	return sort.Search(len(names), func(i int) bool { return names[i][2:] >= name[2:] })
}

// ahead finds the live ticket right ahead of t: its path ("" when t is
// first) and t's place (1: first). Third or fourth, t waits on the first's
// ticket too (head): its departure moves t up to where it watches the
// slots. Dead tickets between are removed (one further ahead is left to
// the waiter behind it); a dead first, by any that would wait on it.
func (t *Ticket) ahead() (path, head string, place int, err error) {
	names, err := t.line.names()
	if err != nil {
		return "", "", 0, err
	}
	i := sort.Search(len(names), func(i int) bool { return names[i][2:] >= t.name[2:] })
	for i--; i >= 0; i-- {
		path := filepath.Join(t.line.Dir, names[i])
		res, err := slotfile.ProbeNamed(path, slotfile.Remove)
		if err != nil {
			return "", "", 0, err
		}
		if res.State == slotfile.Held {
			if first := filepath.Join(t.line.Dir, names[0]); i == 1 || i == 2 {
				if res, err := slotfile.ProbeNamed(first, slotfile.Remove); err == nil && res.State == slotfile.Held {
					head = first
				}
			}
			return path, head, i + 2, nil
		}
	}
	return "", "", 1, nil
}

// A Waiter is one ticket as Waiters reports it.
type Waiter struct {
	Path string
	Rec  slotfile.Record
	Live bool
}

// Waiters lists the tickets, live and dead, in arrival order, removing the
// dead ones with slotfile.Remove; drafts still being made are left out.
func (l Line) Waiters(mode slotfile.Mode) ([]Waiter, error) {
	names, err := l.names()
	if err != nil {
		return nil, err
	}
	var out []Waiter
	for _, n := range names {
		path := filepath.Join(l.Dir, n)
		res, err := slotfile.ProbeNamed(path, mode)
		if err != nil {
			return nil, err
		}
		if res.State == slotfile.Free || res.State == slotfile.Held && strings.HasPrefix(n, slotfile.DraftPrefix) {
			continue // gone, or still being made
		}
		out = append(out, Waiter{Path: path, Rec: res.Rec, Live: res.State == slotfile.Held})
	}
	return out, nil
}
