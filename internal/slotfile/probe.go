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

// Mode says what Probe may do besides looking.
type Mode int

// The modes of Probe.
const (
	Look         Mode = iota // change nothing (status)
	Remove                   // delete a dead holder's file (acquire, ForceRelease, cleanup)
	removeOrphan             // Remove, even a young empty file: its maker is gone (ProbeNamed)
)

// freshDetail marks a slot held only because its file is young and empty.
const freshDetail = "just created; its creator may not have locked it yet"

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

// Probe decides the state of a slot (or ticket) file by its lock: taken
// is held, free is stale, no file is free, anything but a regular file is
// invalid (and never deleted: it could be swapped for a live holder's file
// between the look and the delete). A lock that cannot be tried falls back
// to the recorded pid (FallbackProbe). With Remove, a stale file is
// deleted while Probe holds its lock, so nobody can have taken it.
//
// A probe that locked another file than it looked at (a holder deleted it,
// an acquirer made a new one) looks again: deleting the new file by the
// old one's look would give the slot two holders.
func Probe(path string, mode Mode) (Result, error) {
	for range 3 {
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return Result{State: Free}, nil
		}
		if err != nil {
			return Result{State: Held, Detail: "cannot stat: " + err.Error()}, nil
		}
		if !fi.Mode().IsRegular() {
			return Result{State: Invalid, Detail: Describe(fi) + ", which llmslots never makes: remove it by hand"}, nil
		}
		// An empty file may not be locked yet by its creator (the
		// reference's never checks that its file kept its name): held
		// until old enough to be a dead holder's.
		if fi.Size() == 0 && time.Since(fi.ModTime()) < FreshAge && mode != removeOrphan {
			return Result{State: Held, Detail: freshDetail}, nil
		}
		if TestHooks.ProbeBeforeLock != nil {
			TestHooks.ProbeBeforeLock(path)
		}
		lk, locked, err := filelock.TryLockPath(path, os.O_RDONLY)
		if errors.Is(err, syscall.EBADF) || errors.Is(err, syscall.EIO) {
			// NFS emulates flock with write locks, which need a writable file.
			lk, locked, err = filelock.TryLockPath(path, os.O_RDWR)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return Result{State: Free}, nil
		}
		if err != nil {
			return FallbackProbe(path, err), nil
		}
		if !locked {
			// Only status (Look) reads a live holder's record: acquirers probe often.
			res := Result{State: Held}
			if mode == Look {
				res.Rec, _ = ReadRecord(path)
			}
			return res, nil
		}
		cur, err := lk.Stat()
		if err != nil || !filelock.Linked(cur) || !filelock.StillAt(path, cur) {
			lk.Unlock()
			return Result{State: Free}, nil // released while we looked
		}
		// A new file may get the inode number just freed, but a file
		// nobody holds does not change: any change means another file.
		if !os.SameFile(fi, cur) || fi.Size() != cur.Size() || !fi.ModTime().Equal(cur.ModTime()) {
			lk.Unlock()
			continue
		}
		rec, _ := ReadRecord(path)
		if mode == Look {
			lk.Unlock()
			return Result{State: Stale, Rec: rec}, nil
		}
		if err := filelock.RemoveLocked(path, lk); err != nil {
			return Result{}, fmt.Errorf("llmslots: %w", err)
		}
		return Result{State: Stale, Rec: rec, Removed: true}, nil
	}
	return Result{State: Held, Detail: "replaced again and again while probed; counted as held"}, nil
}

// ProbeNamed is Probe for a ticket or draft, whose name carries its maker's
// pid: with Remove, a young empty file whose maker is gone is removed too (a
// maker in another pid namespace just retries: Join makes its draft again).
func ProbeNamed(path string, mode Mode) (Result, error) {
	res, err := Probe(path, mode)
	if err == nil && mode != Look && res.Detail == freshDetail && !proc.Alive(pidInName(filepath.Base(path))) {
		res, err = Probe(path, removeOrphan)
	}
	return res, err
}

// FallbackProbe judges a file whose lock could not be tried (lockErr) by its
// record: a live or unknown holder is held (stale would invite a second one).
func FallbackProbe(path string, lockErr error) Result {
	rec, err := ReadRecord(path)
	why := "lock not probed (" + lockErr.Error() + ")"
	switch {
	case err != nil || rec.PID == 0:
		return Result{State: Held, Rec: rec, Detail: why + " and no pid recorded; counted as held"}
	case HolderAlive(rec):
		return Result{State: Held, Rec: rec, Detail: why + "; pid is alive"}
	}
	return Result{State: Stale, Rec: rec, Detail: why + "; pid is dead"}
}

// HolderHere reports whether rec names a live process of this host and pid
// namespace started when it says, one that may be signalled: false if unsure.
func HolderHere(rec Record) bool {
	me := Self()
	if rec.PID <= 0 || rec.Host != me.Host || rec.PidNS != me.PidNS || !proc.Alive(rec.PID) {
		return false
	}
	return rec.Start == "" || proc.StartTime(rec.PID) == rec.Start
}

// HeldByAncestor reports whether the slot at path is held by an ancestor
// of this process that its record names, by pid and start time: a process
// that lost the descriptor its parent handed it must not wait on itself,
// but the child of a stranger that got a dead taker's pid must.
func HeldByAncestor(path string) bool {
	res, err := Probe(path, Look)
	return err == nil && res.State == Held && res.Rec.Start != "" && HolderHere(res.Rec) && proc.IsAncestor(res.Rec.PID)
}

// HolderAlive judges a recorded holder by its pid: a pid that exists is
// alive unless its start time shows a reuse. A holder on another host or
// in another pid namespace cannot be judged and counts as alive.
func HolderAlive(rec Record) bool {
	me := Self()
	if rec.Host != "" && me.Host != "" && rec.Host != me.Host ||
		rec.PidNS != "" && me.PidNS != "" && rec.PidNS != me.PidNS {
		return true
	}
	now := proc.StartTime(rec.PID) // "" if unknown
	return proc.Alive(rec.PID) && (rec.Start == "" || now == "" || now == rec.Start)
}
