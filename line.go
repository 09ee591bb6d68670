package llmslots

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"

	"github.com/llmslots/llmslots/internal/filelock"
)

// The queue directory is read at every enqueue and every release that
// serves the line, by every process; with hundreds of waiters, a string
// for each name and a sort of them all cost more than the rest of the
// handoff (bench/README.md). The scans here read the directory once, in
// place, and keep only the few names they are asked for, copied into
// fixed buffers, so that reading a long line allocates nothing per name.

// lineName is a name of the queue directory, kept by a scan.
type lineName struct {
	b [255]byte // Linux's NAME_MAX; a longer name is no ticket (inLine)
	n int
}

func (l *lineName) set(b []byte) { l.n = copy(l.b[:], b) }

// key is the name's arrival key: the name without its two-byte prefix
// (ticketPrefix and draftPrefix are the same length).
func (l *lineName) key() []byte { return l.b[len(ticketPrefix):l.n] }

func (l *lineName) String() string { return string(l.b[:l.n]) }

// inLine reports whether name stands in line (a ticket or a draft), and
// returns its arrival key.
func inLine(name []byte) ([]byte, bool) {
	if len(name) > len(lineName{}.b) {
		return nil, false // no ticket is that long: not one this package made
	}
	if !bytes.HasPrefix(name, []byte(ticketPrefix)) && !bytes.HasPrefix(name, []byte(draftPrefix)) {
		return nil, false
	}
	return name[len(ticketPrefix):], true
}

// aheadKept is how many of the tickets right ahead of a waiter one read
// of the line keeps: enough to step past a dead one or two without
// reading the line again.
const aheadKept = 4

// lineAhead reads the queue directory qdir once for a waiter whose key is
// mine: up to aheadKept tickets (and drafts) right ahead of it, nearest
// first; the first in line of all those ahead; and whether more are ahead
// than were kept.
func lineAhead(qdir string, mine string) (near []string, first string, more bool, err error) {
	var keep [aheadKept]lineName // nearest first
	var head lineName
	n := 0
	err = filelock.EachName(qdir, func(name []byte) {
		key, ok := inLine(name)
		if !ok || string(key) >= mine {
			return
		}
		if head.n == 0 || bytes.Compare(key, head.key()) < 0 {
			head.set(name)
		}
		if n == aheadKept {
			more = true
			if bytes.Compare(key, keep[n-1].key()) <= 0 {
				return // farther than every one kept
			}
			n-- // the farthest kept makes way
		}
		i := n
		for ; i > 0 && bytes.Compare(key, keep[i-1].key()) > 0; i-- {
			keep[i] = keep[i-1]
		}
		keep[i].set(name)
		n++
	})
	if err != nil {
		return nil, "", false, lineErr(err)
	}
	for i := range n {
		near = append(near, keep[i].String())
	}
	return near, head.String(), more, nil
}

// lineFirst reads the queue directory qdir once: the first two in line,
// in arrival order ("" where there are fewer).
func lineFirst(qdir string) (first, second string, err error) {
	var a, b lineName
	err = filelock.EachName(qdir, func(name []byte) {
		key, ok := inLine(name)
		if !ok {
			return
		}
		switch {
		case a.n == 0 || bytes.Compare(key, a.key()) < 0:
			b = a
			a.set(name)
		case b.n == 0 || bytes.Compare(key, b.key()) < 0:
			b.set(name)
		}
	})
	if err != nil {
		return "", "", lineErr(err)
	}
	return a.String(), b.String(), nil
}

// lineErr is the error of a scan of the line: none for a queue directory
// gone (removed between the open and the read, or with the whole pool:
// an empty line, as queueNames sees it).
func lineErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("llmslots: %w", err)
}
