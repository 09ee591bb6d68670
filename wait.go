package llmslots

import (
	"context"
	"errors"
	"io/fs"
	"time"
)

// waitInLine is the one waiting loop. It takes a ticket, then: at the head
// of the queue, it watches the slots and tries them; behind someone, it
// watches the ticket ahead. Each wake-up starts the look afresh. It
// returns a guard, an error, nil, nil when deadline (if not zero) passed,
// or nil, ctx.Err() when ctx ended. The ticket is gone when it returns,
// whatever the outcome, so cancellation leaves the queue clean.
func (p *Pool) waitInLine(ctx context.Context, max int, deadline time.Time, arrived int64, s *spare) (g *Guard, err error) {
	t, err := p.enqueue(arrived)
	if errors.Is(err, fs.ErrNotExist) {
		// The queue directory, or the whole pool directory, was removed
		// while this Pool was in use: make it again, as create does.
		if err = p.remake(); err == nil {
			t, err = p.enqueue(arrived)
		}
	}
	if err != nil {
		return nil, err
	}
	w := newWatcher(p.dir)
	defer func() {
		w.close()
		if g != nil {
			// Served: hand the slot to the caller first and wake the next
			// waiter just after. Deleting the ticket wakes it, and on a busy
			// machine it may preempt this process before the caller even
			// sees its slot. Until then the ticket stays locked; Release
			// waits for it, and if the process dies first the kernel's
			// close wakes the next waiter instead.
			left := make(chan struct{})
			g.leftQueue = left
			go func() {
				t.leave()
				close(left)
			}()
			return
		}
		t.leave()
	}()
	for {
		w.reset()
		wake := deadline // when to look again without an event
		ahead, err := t.ahead(w)
		if err != nil {
			return nil, err
		}
		if ahead == "" {
			// Watch before trying: a slot freed after the try still
			// wakes us.
			if err := w.watchSlots(p.dir); errors.Is(err, fs.ErrNotExist) {
				// The pool directory was removed while we waited (our
				// ticket with it): make it again and look afresh. The
				// lock on each slot still decides; only the order of
				// this wait is lost.
				if err := p.remake(); err != nil {
					return nil, err
				}
				continue
			} else if err != nil {
				return nil, err
			}
			g, soon, err := p.tryAcquireSoon(max, s)
			if g != nil || err != nil {
				return g, err
			}
			if soon {
				// No event will come when a young empty file grows old
				// enough to reclaim: look again then.
				if at := time.Now().Add(freshFileAge); wake.IsZero() || at.Before(wake) {
					wake = at
				}
			}
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return nil, nil
		}
		if err := w.wait(ctx, wake); err != nil {
			return nil, err
		}
	}
}

// remake creates the pool's directory and queue again after they were
// removed while in use.
func (p *Pool) remake() error {
	p.ready.Store(false)
	return p.prepare()
}
