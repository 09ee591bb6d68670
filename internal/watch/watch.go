// Package watch tells a waiting process when to look at the pool again:
// inotify events on Linux; elsewhere, and on Linux without inotify, the
// locks themselves (a blocking shared lock returns when the holder lets
// go; see lockWatcher). A growing, jittered sleep is the last resort. A
// watcher
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
	// WatchSlots asks for a wake-up when a slot of dir may have freed;
	// slots are the paths of the slot files the caller found held.
	WatchSlots(dir string, slots []string) error
	// WatchTicket asks for a wake-up when the ticket at path is deleted
	// or its waiter dies; also when it is renamed, if moves is set. A
	// ticket a releaser hands a slot to is renamed into the slot: the
	// waiter behind it is not woken for that (see Keep), only when the
	// slot is released again or its holder dies.
	WatchTicket(path string, moves bool) error
	// Keep watches, until Close and through every Reset, dir for holders
	// that die (a later WatchSlots of dir adds releases, and that stays
	// until Close too) and the waiter's own ticket own for its rename (a
	// releaser handing it a slot). Only a watcher of file events can
	// (see Events); others do nothing.
	Keep(dir, own string) error
	// SawSlots reports whether the kept watch of dir raised an event
	// since the last call, events still queued included. Watchers that
	// do not keep watches always report true.
	SawSlots() bool
	// OwnMoved reports whether the waiter's own ticket (see Keep) may
	// have been renamed since the last call: false only when its kept
	// watch is set and raised no rename since, so a look at the ticket
	// would find it in place. Watchers that do not keep watches always
	// report true.
	OwnMoved() bool
	// Events reports whether the watcher waits for file events, and so
	// can keep watches: false for one that waits on locks or polls.
	Events() bool
	// OnlySlots reports whether every wake-up since the last call came
	// from the kept watch of the pool directory alone. Watchers that do
	// not keep watches always report false.
	OnlySlots() bool
	// Wait blocks until a wake-up, deadline (zero: none) or ctx's end,
	// returning ctx.Err() for the last.
	Wait(ctx context.Context, deadline time.Time) error
	// Close ends the watcher's use.
	Close()
	// Fallback reports why the watcher polls instead of waiting for
	// events, once it does; nil while events are used (or it always
	// waited on locks: off Linux, on network filesystems, under
	// ForcePortable).
	Fallback() error
}

// ForcePortable, set by tests, makes every watcher wait on locks, as it
// does off Linux, on network filesystems and without inotify: so the
// code macOS and the BSDs run is the code Linux tests run.
var ForcePortable bool

// recheckEvery is how often a waiter looks again without a wake-up, in
// case one was lost. Rare, because each timer wake-up of an idle Go
// process costs several thread switches.
const recheckEvery = 15 * time.Second

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

func (p *poller) Reset()                            {}
func (p *poller) WatchSlots(string, []string) error { return nil }
func (p *poller) WatchTicket(string, bool) error    { return nil }
func (p *poller) Keep(string, string) error         { return nil }
func (p *poller) SawSlots() bool                    { return true }
func (p *poller) Events() bool                      { return false }
func (p *poller) OnlySlots() bool                   { return false }
func (p *poller) OwnMoved() bool                    { return true }
func (p *poller) Close()                            {}
func (p *poller) Fallback() error                   { return p.why }

// next returns the next sleep, jittered, and grows the one after.
func (p *poller) next() time.Duration {
	sleep := p.delay/2 + rand.N(p.delay/2+1)
	p.delay = min(2*p.delay, pollMax)
	return sleep
}

func (p *poller) Wait(ctx context.Context, deadline time.Time) error {
	sleep := p.next()
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
