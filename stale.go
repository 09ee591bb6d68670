package llmslots

import (
	"fmt"
	"strconv"

	"github.com/llmslots/llmslots/internal/slotfile"
)

// FindStale returns the ids of stale slots, below max or beyond it: slot
// files whose lock nobody holds, left by holders that died (where the lock
// cannot be tried, by a recorded pid that no longer exists). Acquire
// reclaims them anyway; FindStale is for reports and tidy directories.
func (p *Pool) FindStale(max int) ([]int, error) {
	st, err := p.ReadStatus(max)
	if err != nil {
		return nil, err
	}
	stale := []int{}
	for _, s := range st.Slots {
		if s.State == StateStale {
			stale = append(stale, s.SlotID)
		}
	}
	return stale, nil
}

// ForceRelease removes slot slotID's file if nobody holds its lock, while
// holding it (so a process taking the slot at that moment keeps it). It
// returns nil when the file is absent or was stale, and refuses a held slot
// with an error matching ErrHeld that names the holder's pid: deleting its
// file would let a second process in (stop the holder instead).
func (p *Pool) ForceRelease(slotID int) error {
	if err := p.usable(); err != nil {
		return err
	}
	if err := checkSlotID(slotID); err != nil {
		return err
	}
	exists, err := p.group.maker().Inspect(p.dir, EnvDir)
	if err != nil || !exists {
		return err
	}
	path := slotfile.SlotPath(p.dir, slotID)
	res, err := slotfile.Probe(path, slotfile.Remove)
	if err != nil {
		return err
	}
	if res.State == slotfile.Invalid {
		return fmt.Errorf("llmslots: slot file %s is %s", path, res.Detail)
	}
	if res.State == slotfile.Held {
		holder := "an unknown process"
		if rec, _ := slotfile.ReadRecord(path); rec.PID > 0 {
			holder = "pid " + strconv.Itoa(rec.PID)
		}
		if res.Detail != "" {
			holder += " (" + res.Detail + ")"
		}
		msg := fmt.Sprintf("llmslots: slot %d of %s is held by %s; refusing to delete a held slot's file, which would let a second process in: stop the holder instead", slotID, p.dir, holder)
		return &wrapped{msg: msg, sentinel: ErrHeld}
	}
	if res.State == slotfile.Stale && !res.Removed {
		return fmt.Errorf("llmslots: slot %d of %s looks stale (%s) but its lock cannot be taken, so it is not removed", slotID, p.dir, res.Detail)
	}
	if res.State == slotfile.Stale {
		p.log().Debug("llmslots: removed stale slot", "slot", slotID, "dir", p.dir, "dead_pid", res.Rec.PID)
	}
	return nil
}
