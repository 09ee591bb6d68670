// Package watch tells a waiting process when to look at the pool again:
// inotify events on Linux, a growing, jittered sleep elsewhere. A watcher
// never decides anything: after every wake-up the waiter reads the state
// afresh, so a spurious or coalesced event costs a look, never a wrong
// answer.
package watch

import (
	"context"
	"math/rand/v2"
	"time"
)

// A Watcher tells a waiter when to look again.
type Watcher interface {
	// Reset drops all watches.
	Reset()
	// WatchSlots asks for a wake-up when a slot of dir may have freed.
	WatchSlots(dir string) error
	// WatchTicket asks for a wake-up when the ticket at path is deleted
	// or its waiter dies.
	WatchTicket(path string) error
	// Wait blocks until a wake-up, deadline (zero: none) or ctx's end,
	// returning ctx.Err() for the last.
	Wait(ctx context.Context, deadline time.Time) error
	// Close ends the watcher's use.
	Close()
	// Fallback reports why the watcher polls instead of waiting for
	// events, once it does; nil while events are used (or it always
	// polled: off Linux, on network filesystems, under ForcePolling).
	Fallback() error
}

// ForcePolling, set by tests, makes every watcher poll, as it does off
// Linux and on network filesystems.
var ForcePolling bool

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
	why   error // why it polls where events were wanted; nil if by design
}

func newPoller() *poller { return &poller{delay: pollMin} }

func (p *poller) Reset()                   {}
func (p *poller) WatchSlots(string) error  { return nil }
func (p *poller) WatchTicket(string) error { return nil }
func (p *poller) Close()                   {}
func (p *poller) Fallback() error          { return p.why }

func (p *poller) Wait(ctx context.Context, deadline time.Time) error {
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
