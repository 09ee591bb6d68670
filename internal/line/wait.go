package line

import (
	"context"
	"time"
)

// Slots is what a waiter needs of the pool it waits for.
type Slots interface {
	// Try takes a free slot if the pool allows a grant now; retry, if not
	// zero, is when to try again though nothing wakes the waiter.
	Try() (ok bool, retry time.Time, err error)
	Paths() []string // the slot files whose release may let the waiter in
	Free() bool      // some slot looks free (a dead holder's is reclaimed by the look)
}

// stallAfter is how long a free slot may stay untaken by the first in line
// (stopped, or starved of CPU) before the waiter behind it takes it.
const stallAfter = time.Second

// Wait waits for t's turn and a slot: first in line, it tries the slots
// and waits on the locks of the held ones; behind someone, on the lock of
// the ticket right ahead (second or third, on the slots too, to pass those
// ahead when they leave a slot free; third or fourth, on the first's
// ticket too). Each wake-up starts afresh. It returns true once s.Try took
// a slot, false when deadline (if not zero) passed, or ctx.Err() when ctx
// ended. The caller leaves the line (t.Leave) whatever the outcome.
func (t *Ticket) Wait(ctx context.Context, deadline time.Time, s Slots) (bool, error) {
	w := &waker{wake: make(chan struct{}, 1)}
	defer w.reset()
	var freeSince time.Time // when the waiter second or third in line saw a free slot
	for {
		ahead, head, place, err := t.ahead()
		if err != nil {
			return false, err
		}
		if ahead != "" && w.gone(ahead) || head != "" && w.gone(head) {
			continue // left or died since the look: look again
		}
		if place <= 3 {
			// Watch the slots before the try, so a slot freed after it
			// still wakes the waiter; poll if one is missing or free now,
			// as the try may not get it (a racer, the throttle).
			for _, p := range s.Paths() {
				w.polls = w.watch(p) != nil || w.polls
			}
		}
		// Second in line, a waiter passes a first that leaves a slot free
		// for stallAfter; third, two that leave one free twice as long.
		stalled, pass := false, time.Duration(place-1)*stallAfter
		if (place == 2 || place == 3) && s.Free() {
			if freeSince.IsZero() {
				freeSince = time.Now()
			}
			if stalled = time.Since(freeSince) >= pass; !stalled {
				w.until(freeSince.Add(pass))
			}
		} else {
			freeSince = time.Time{}
		}
		if ahead == "" || stalled {
			ok, retry, err := s.Try()
			if ok || err != nil {
				return ok, err
			}
			w.until(retry)
			freeSince = time.Time{}
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return false, nil
		}
		w.until(deadline)
		if err := w.sleep(ctx); err != nil {
			return false, err
		}
	}
}
