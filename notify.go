package llmslots

import (
	"context"
	"math/rand/v2"
	"time"
)

// A watcher tells a waiter when to look again. It never decides anything:
// after every wake-up the waiter reads the state afresh, so a spurious or
// coalesced event costs a look, never a wrong answer.
type watcher interface {
	// reset drops all watches.
	reset()
	// watchSlots asks for a wake-up when a slot of dir may have freed.
	watchSlots(dir string) error
	// watchTicket asks for a wake-up when the ticket at path is deleted
	// or its waiter dies.
	watchTicket(path string) error
	// wait blocks until a wake-up, deadline (zero: none) or ctx's end,
	// returning ctx.Err() for the last.
	wait(ctx context.Context, deadline time.Time) error
	close()
}

// Polling bounds, where events are not available: the sleep grows from
// pollMin to pollMax, jittered so that waiters who started together do
// not look together.
const (
	pollMin = time.Millisecond
	pollMax = 250 * time.Millisecond
)

// poller is the watcher of last resort: it sleeps, growing the sleep
// after each look.
type poller struct {
	delay time.Duration
	timer *time.Timer
}

func newPoller() *poller { return &poller{delay: pollMin} }

func (p *poller) reset()                   {}
func (p *poller) watchSlots(string) error  { return nil }
func (p *poller) watchTicket(string) error { return nil }
func (p *poller) close()                   {}

func (p *poller) wait(ctx context.Context, deadline time.Time) error {
	sleep := p.delay/2 + rand.N(p.delay/2+1)
	p.delay = min(2*p.delay, pollMax)
	if !deadline.IsZero() {
		sleep = min(sleep, time.Until(deadline))
	}
	if sleep <= 0 {
		return ctx.Err()
	}
	if p.timer == nil {
		p.timer = time.NewTimer(sleep)
	} else {
		p.timer.Reset(sleep)
	}
	select {
	case <-ctx.Done():
		p.timer.Stop()
		return ctx.Err()
	case <-p.timer.C:
		return nil
	}
}
