package slotfile

import "math/rand/v2"

// A Pick is what one attempt at a pool's slots found.
type Pick struct {
	ID    int    // the slot taken; -1 if none
	Taken *Taken // its file, if one was taken
	// Reclaimed is the record of the dead holder whose file was removed
	// to take the slot (PID 0 if the slot was free).
	Reclaimed Record
	Soon      bool // a slot held only by a young empty file, reclaimable once old
	// Unusable lists the slots whose path holds what no llmslots process
	// makes (a planted symbolic link, a FIFO); Why says what, in order.
	Unusable []int
	Why      []string
}

// Pick makes one attempt at the slots 0..max-1 of dir and takes the first
// it can, recording rec in it; mine reports a slot this process holds
// already, which is not tried. A missing file is found without probing a
// held one; only when none is missing are the existing ones probed, and a
// dead holder's removed under its lock and made anew.
//
// A small pool is tried from slot 0, so holders sit at the lowest ids,
// which status reads best; one above max 64 from a random slot: from 0,
// each held slot before the first free one costs a failed create (512 held
// of 1,024: about half a millisecond), from a random one max/free tries.
func (m Maker) Pick(dir string, max int, rec []byte, mine func(id int) bool) (Pick, error) {
	pick := Pick{ID: -1}
	start := 0
	if max > 64 {
		start = rand.IntN(max)
	}
	var existing []int
	for i := range max {
		id := (start + i) % max
		if mine(id) {
			continue
		}
		t, exists, err := m.Take(SlotPath(dir, id), rec)
		if t != nil || err != nil {
			pick.ID, pick.Taken = id, t
			return pick, err
		}
		if exists {
			existing = append(existing, id)
		}
	}
	for _, id := range existing {
		path := SlotPath(dir, id)
		res, err := Probe(path, Remove)
		switch {
		case err != nil:
			return pick, err
		case res.State == Invalid:
			pick.Unusable = append(pick.Unusable, id)
			pick.Why = append(pick.Why, res.Detail)
			continue
		case res.State == Held:
			pick.Soon = pick.Soon || res.Detail == freshDetail
			continue
		case res.State == Stale && !res.Removed:
			continue // judged dead by its pid alone: not ours to delete
		}
		t, _, err := m.Take(path, rec)
		if t != nil || err != nil {
			pick.ID, pick.Taken, pick.Reclaimed = id, t, res.Rec
			return pick, err
		}
	}
	return pick, nil
}
