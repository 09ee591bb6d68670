package llmslots

import (
	"context"
	"time"
)

// waitInLine is the one waiting loop. It takes a ticket, then: at the head
// of the queue, it watches the slots and tries them; behind someone, it
// watches the ticket ahead. Each wake-up starts the look afresh. It
// returns a guard, an error, nil, nil when deadline (if not zero) passed,
// or nil, ctx.Err() when ctx ended. The ticket is gone when it returns,
// whatever the outcome, so cancellation leaves the queue clean.
func (p *Pool) waitInLine(ctx context.Context, max int, deadline time.Time, arrived int64) (*Guard, error) {
	t, err := p.enqueue(arrived)
	if err != nil {
		return nil, err
	}
	defer t.leave()
	w := newWatcher(p.dir)
	defer w.close()
	for {
		w.reset()
		ahead, err := t.ahead(w)
		if err != nil {
			return nil, err
		}
		if ahead == "" {
			// Watch before trying: a slot freed after the try still
			// wakes us.
			if err := w.watchSlots(p.dir); err != nil {
				return nil, err
			}
			if g, err := p.tryAcquire(max); g != nil || err != nil {
				return g, err
			}
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return nil, nil
		}
		if err := w.wait(ctx, deadline); err != nil {
			return nil, err
		}
	}
}
