package slotfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/proc"
)

// Mode says what probe may do besides looking.
type Mode int

const (
	// Look changes nothing (status).
	Look Mode = iota
	// Reclaim deletes a dead holder's file so the slot can be taken
	// anew (acquire), and looks twice before calling a slot held whose
	// recorded holder is gone.
	Reclaim
	// Remove deletes a dead holder's file (ForceRelease, cleanup).
	// Nothing but regular files is ever deleted: a symlink or FIFO could be
	// swapped for a live holder's file between the look and the delete.
	Remove
	// RemoveOrphan is Remove for a file whose creator is known
	// to be gone (a queue file names its creator's pid): even a young
	// empty one is removed if nobody holds its lock.
	RemoveOrphan
)

// FreshDetail marks a slot held only because its file is young and empty.
const FreshDetail = "just created; its creator may not have locked it yet"

// FreshAge is how long an empty slot file is given to be locked and
// recorded by its creator before a free lock on it means a dead holder.
const FreshAge = 2 * time.Second

// Result is what a look at one slot or ticket file found.
type Result struct {
	State   State
	Rec     Record
	Detail  string // set when the state was not decided by the lock alone
	Removed bool   // the stale file is gone
}

// State is a slot's (or ticket's) state as its lock tells it.
type State string

// The states Probe reports.
const (
	Free    State = "free"    // no file
	Held    State = "held"    // its lock is taken
	Stale   State = "stale"   // a file whose lock is free: its holder died
	Invalid State = "invalid" // not a regular file: nothing llmslots makes
)

// probe decides a slot's (or a ticket's) state by its lock: a file whose
// lock is taken is held; a file whose lock is free belonged to a dead
// holder (stale); no file is free; anything but a regular file is invalid.
// When the lock cannot be tried (the file cannot be opened) it falls back
// to the recorded pid: alive, or unknown, counts as held, because calling a
// live holder's slot stale would invite a forced release and a second
// holder.
//
// With a mode other than Look, a stale file is deleted while probe
// holds its lock: nobody can have taken it in between.
//
// The lock is tried through a read-only descriptor: closing it raises no
// IN_CLOSE_WRITE, the event that tells waiters a holder died, so looking at
// a busy slot never wakes anyone.
func Probe(path string, mode Mode) (Result, error) {
	// The file at path may be replaced between the look (lstat) and the
	// lock: a reference holder deletes its file and a reference acquirer
	// creates a new, empty one it has not locked yet. Judging the new file
	// by the old one's look would delete it under its creator: two holders.
	// So the decision is made on the inode locked, and a probe that finds
	// another file than it looked at looks again.
	for range 3 {
		res, changed, err := probeOnce(path, mode)
		if !changed {
			return res, err
		}
	}
	return Result{State: Held, Detail: "replaced again and again while probed; counted as held"}, nil
}

// probeOnce is one look and one lock; changed reports that the file
// locked was not the one looked at, and nothing was decided.
func probeOnce(path string, mode Mode) (res Result, changed bool, err error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Result{State: Free}, false, nil
	}
	if err != nil {
		return Result{State: Held, Detail: "cannot stat: " + err.Error()}, false, nil
	}
	if !fi.Mode().IsRegular() {
		return Result{State: Invalid, Detail: Describe(fi) + ", which llmslots never makes: remove it by hand"}, false, nil
	}
	// Every holder writes its record right after locking, this package
	// and the reference alike. So an empty file whose lock is free is
	// either a dead holder's (killed in that instant) or one whose creator
	// has not locked it yet, and a process that follows the reference does
	// not check, after locking, that its file still has a name: deleting
	// it then would give the slot two holders. A young empty file is
	// therefore counted as held until it is old enough to be a dead one's.
	if fi.Size() == 0 && time.Since(fi.ModTime()) < FreshAge && mode != RemoveOrphan {
		return Result{State: Held, Detail: FreshDetail}, false, nil
	}

	// A path-based try-lock-and-release (filelock.TryLockPath): a held
	// file, the common case, costs an open, a flock and a close. It locks
	// as TryLock does, so probes and takers exclude each other.
	if TestHooks.ProbeBeforeLock != nil {
		TestHooks.ProbeBeforeLock(path)
	}
	lk, locked, err := filelock.TryLockPath(path, os.O_RDONLY)
	if errors.Is(err, syscall.EBADF) || errors.Is(err, syscall.EIO) {
		// NFS emulates flock with write locks, which need a writable file.
		lk, locked, err = filelock.TryLockPath(path, os.O_RDWR)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Result{State: Free}, false, nil
		}
		return FallbackProbe(path, err), false, nil
	}
	if !locked {
		res := Result{State: Held}
		if mode == Look || mode == Remove || mode == RemoveOrphan {
			res.Rec, _ = ReadRecord(path)
		}
		return res, false, nil
	}
	cur, err := lk.Stat()
	if err != nil || !filelock.Linked(cur) || !filelock.StillAt(path, cur) {
		lk.Unlock()
		return Result{State: Free}, false, nil // released while we looked
	}
	// The same inode number is not enough: a new file may get the one
	// just freed. A file nobody holds does not change, so any change in
	// size or time means another file, or a living one: look again.
	if !os.SameFile(fi, cur) || fi.Size() != cur.Size() || !fi.ModTime().Equal(cur.ModTime()) {
		lk.Unlock()
		return Result{}, true, nil
	}
	res = Result{State: Stale}
	if mode == Look {
		// Hold the lock no longer than needed: an acquirer or waiter that
		// met it took the slot (or ticket) for held and may now wait for
		// an event. Give it one: opening the file for writing and closing
		// it raises IN_CLOSE_WRITE, as a holder's death does.
		lk.Unlock()
		if f, err := os.OpenFile(path, os.O_WRONLY|filelock.NoFollow, 0); err == nil {
			f.Close()
		}
		res.Rec, _ = ReadRecord(path)
		return res, false, nil
	}
	res.Rec, _ = ReadRecord(path)
	if err := filelock.RemoveLocked(path, lk); err != nil {
		return Result{}, false, fmt.Errorf("llmslots: %w", err)
	}
	res.Removed = true
	return res, false, nil
}

// probeNamed is probe for a ticket, draft or spare, whose file name
// carries its maker's pid (see pidInName): with a mode that removes, a
// young empty file whose maker is gone is an orphan (its maker died
// between making and locking it) and is removed too.
//
// The pid may belong to another pid namespace (a container sharing the
// pool), where it looks dead here while its maker lives. Such a removal
// costs a retry, never a second holder: a maker whose draft is gone makes
// it again (enqueue), and a spare deleted before it was locked has no name
// to link, so its maker creates the slot file the classic way (take).
func ProbeNamed(path string, mode Mode) (Result, error) {
	res, err := Probe(path, mode)
	if err == nil && mode != Look && res.Detail == FreshDetail && !proc.Alive(PidInName(filepath.Base(path))) {
		res, err = Probe(path, RemoveOrphan)
	}
	return res, err
}

// FallbackProbe judges a slot whose lock could not be tried by its record.
func FallbackProbe(path string, lockErr error) Result {
	rec, err := ReadRecord(path)
	res := Result{State: Held, Rec: rec}
	switch {
	case err != nil || rec.PID == 0:
		res.Detail = "lock not probed (" + lockErr.Error() + ") and no pid recorded; counted as held"
	case HolderAlive(rec):
		res.Detail = "lock not probed (" + lockErr.Error() + "); pid is alive"
	default:
		res.State = Stale
		res.Detail = "lock not probed (" + lockErr.Error() + "); pid is dead"
	}
	return res
}

// holderHere reports whether rec's pid names, on this host and in this
// pid namespace, a live process started when the record says: one that
// may be signalled as the holder. Unlike holderAlive, which answers
// "alive" when it cannot tell, it answers false then.
func HolderHere(rec Record) bool {
	me := Self()
	if rec.PID <= 0 || rec.Host != me.Host || rec.PidNS != me.PidNS || !proc.Alive(rec.PID) {
		return false
	}
	return rec.Start == "" || proc.StartTime(rec.PID) == rec.Start
}

// holderAlive judges a recorded holder by its pid: a pid that exists is
// alive unless its start time shows it is another process that reused the
// pid. A holder on another host, or in another pid namespace (another
// container sharing the pool), cannot be judged and counts as alive.
func HolderAlive(rec Record) bool {
	me := Self()
	if rec.Host != "" && me.Host != "" && rec.Host != me.Host ||
		rec.PidNS != "" && me.PidNS != "" && rec.PidNS != me.PidNS {
		return true
	}
	if !proc.Alive(rec.PID) {
		return false
	}
	if rec.Start != "" {
		if now := proc.StartTime(rec.PID); now != "" && now != rec.Start {
			return false
		}
	}
	return true
}
