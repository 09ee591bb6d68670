package llmslots

import (
	"context"
	"math/rand/v2"
	"time"
)

// Polling bounds. Waiting is polling for now: try, sleep, try again, with
// the sleep growing from pollMin to pollMax and jittered so that waiters
// who started together do not retry together.
const (
	pollMin = time.Millisecond
	pollMax = 100 * time.Millisecond
)

// waitForSlot is the one waiting loop: it calls try until try returns a
// guard or an error, ctx is done, or deadline (if not zero) passes. It
// always tries at least once, and once more at the deadline. It returns
// nil, nil when the deadline passed, and nil, ctx.Err() when ctx ended.
func waitForSlot(ctx context.Context, deadline time.Time, try func() (*Guard, error)) (*Guard, error) {
	delay := pollMin
	var timer *time.Timer
	for {
		g, err := try()
		if g != nil || err != nil {
			return g, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sleep := delay/2 + rand.N(delay/2+1)
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return nil, nil
			}
			sleep = min(sleep, left)
		}
		if timer == nil {
			timer = time.NewTimer(sleep)
			defer timer.Stop()
		} else {
			timer.Reset(sleep)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
		}
		delay = min(2*delay, pollMax)
	}
}
