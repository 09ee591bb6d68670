package llmslots

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/gofrs/flock"
)

// probeResult is what a look at one slot file found.
type probeResult struct {
	state   SlotState
	rec     record
	detail  string // set when the state was not decided by the lock alone
	removed bool   // remove was asked for, and the stale file is gone
}

// probe decides a slot's state by its lock, without creating or changing
// anything: a file whose lock is taken is held; a file whose lock is free
// belonged to a dead holder (stale); no file is free. When the lock cannot
// be tried (the file cannot be opened) it falls back to the recorded pid:
// alive, or unknown, counts as held, because calling a live holder's slot
// stale would invite a forced release and a second holder.
//
// With remove, a stale file is deleted while the probe holds its lock, so
// that nobody can have taken it in between.
func probe(path string, remove bool) (probeResult, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return probeResult{state: StateFree}, nil
	}
	if err != nil {
		return probeResult{state: StateHeld, detail: "cannot stat: " + err.Error()}, nil
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		// Never followed, never taken: nobody holds it, so it is stale,
		// and removing the link (not its target) is safe.
		if remove {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return probeResult{}, fmt.Errorf("llmslots: %w", err)
			}
		}
		return probeResult{state: StateStale, detail: "a symbolic link, not a slot file", removed: remove}, nil
	case fi.IsDir():
		return probeResult{}, fmt.Errorf("llmslots: slot file %s is a directory; remove it by hand", path)
	}

	// gofrs/flock does the locking here: a path-based try-lock-and-release
	// is exactly its job. (Acquiring needs the descriptor it keeps to
	// itself, to check the inode and write the record, so take uses its
	// own; both lock the same way, so they exclude each other.)
	lk := flock.New(path, flock.SetFlag(os.O_RDWR|openNoFollow))
	locked, err := lk.TryLock()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return probeResult{state: StateFree}, nil
		}
		return fallbackProbe(path, err), nil
	}
	rec, _ := readRecord(path)
	if !locked {
		return probeResult{state: StateHeld, rec: rec}, nil
	}
	defer lk.Unlock()
	cur, err := lk.Stat()
	if err != nil || !linked(cur) || !stillAt(path, cur) {
		// Released while we looked: the holder deleted it.
		return probeResult{state: StateFree}, nil
	}
	if remove {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return probeResult{}, fmt.Errorf("llmslots: %w", err)
		}
	}
	return probeResult{state: StateStale, rec: rec, removed: remove}, nil
}

// fallbackProbe judges a slot whose lock could not be tried by its record.
func fallbackProbe(path string, lockErr error) probeResult {
	rec, err := readRecord(path)
	res := probeResult{state: StateHeld, rec: rec}
	switch {
	case err != nil || rec.PID == 0:
		res.detail = "lock not probed (" + lockErr.Error() + ") and no pid recorded; counted as held"
	case holderAlive(rec):
		res.detail = "lock not probed (" + lockErr.Error() + "); pid is alive"
	default:
		res.state = StateStale
		res.detail = "lock not probed (" + lockErr.Error() + "); pid is dead"
	}
	return res
}

// holderAlive judges a recorded holder by its pid: a pid that exists is
// alive unless its start time shows it is another process that reused the
// pid. A holder on another host cannot be judged and counts as alive.
func holderAlive(rec record) bool {
	if me := self(); rec.Host != "" && me.Host != "" && rec.Host != me.Host {
		return true
	}
	if !pidAlive(rec.PID) {
		return false
	}
	if rec.Start != "" {
		if now := processStart(rec.PID); now != "" && now != rec.Start {
			return false
		}
	}
	return true
}
