package llmslots

import (
	"cmp"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/slotfile"
	"github.com/llmslots/llmslots/internal/throttle"
)

// A state's limit is at most MaxSlots: this fails to compile otherwise.
const _ = uint(MaxSlots-throttle.MaxLimit) + uint(throttle.MaxLimit-MaxSlots)

// ThrottleStatus is the throttling state of a pool, in Status and
// Progress; the zero value means no report was ever made.
type ThrottleStatus struct {
	Limit       int             `json:"limit"`                 // effective: how many may hold a slot now, <= Status.Max
	RawLimit    float64         `json:"raw_limit"`             // as stored: releases add fractions
	PausedUntil time.Time       `json:"paused_until,omitzero"` // zero when no pause is on
	Spacing     time.Duration   `json:"spacing_ns,omitempty"`  // between grants once the pause ends
	LastReport  *ThrottleReport `json:"last_report,omitempty"` // nil if none is recorded
	Error       string          `json:"error,omitempty"`       // why the state file was ignored (corrupt, foreign)
}

// ThrottleReport is one report: Guard.Throttled, or a pause by hand.
type ThrottleReport struct {
	At      time.Time     `json:"at"`
	PID     int           `json:"pid"`
	Host    string        `json:"host"`
	Hint    time.Duration `json:"hint_ns"` // the provider's retry-after; 0 if none
	Kind    string        `json:"kind"`    // "throttled" (Guard.Throttled), "usage" (a UsageLimit to ReportLimit) or "pause" (Pool.Pause)
	Reason  string        `json:"reason,omitempty"`
	Command string        `json:"command,omitempty"`
	Label   string        `json:"label,omitempty"`
}

// Throttled reports that the work done under this slot was throttled by
// the provider (an HTTP 429, "usage limit reached, try again in ...");
// retryAfter is its hint, 0 if none. Call it where the 429 is seen, before
// or after Release. Every process of the pool is then slowed:
//   - No slot is granted until retryAfter has passed (no hint: 1 s,
//     doubled per report until a release succeeds, up to 2 min, jittered);
//     holders and waiters keep their places. Then grants resume a tenth of
//     the pause apart (5-500 ms), so the line does not stampede.
//   - The limit is multiplied by 0.7 (at least 1) once per round (work
//     granted before the last decrease is the same congestion). Each
//     release not throttled raises it by a slot per round (or per 250 ms),
//     slower for a second just below the level that failed.
//
// A retry (Release, acquire again) joins the back of the line, on purpose:
// those ahead waited longer, and a slot kept to retry would pass the
// lowered limit. The state is shared in the pool's directory (.throttle)
// and survives crashes; ReadStatus shows it, Pool.Resume clears it. On a
// nil Guard Throttled does nothing; a failure to record it is logged.
func (g *Guard) Throttled(retryAfter time.Duration) {
	g.report(retryAfter, "", throttle.Throttled)
}

// report records a report by g's holder: policy is the state after it.
func (g *Guard) report(retryAfter time.Duration, reason string, policy func(*throttle.State, time.Time, throttle.Report) throttle.State) {
	if g == nil || g.pool == nil {
		return
	}
	g.mu.Lock()
	g.th.reported = true
	r := throttle.Report{Max: cmp.Or(g.max, MaxSlots), Granted: g.acquired, RetryAfter: retryAfter, Jitter: rand.Float64(), By: g.pool.reporter(reason)}
	g.mu.Unlock()
	if err := g.pool.updateThrottle(throttle.ChangePatience, func(st *throttle.State) (throttle.State, bool) {
		return policy(st, time.Now(), r), true
	}); err != nil {
		g.pool.log().Warn("llmslots: the throttle report was not recorded", "dir", g.pool.dir, "err", err)
	}
}

// Pause pauses the pool by hand for d, positive and at most 24 h: no
// process is granted a slot until d has passed (holders keep theirs,
// waiters their places); the limit is kept. reason is recorded for status.
func (p *Pool) Pause(d time.Duration, reason string) error {
	if err := p.usable(); err != nil {
		return err
	}
	if d <= 0 || d > throttle.MaxPause {
		return invalidf("pause must be > 0 and at most %v, got %v", throttle.MaxPause, d)
	}
	if checkLabel(reason) != nil {
		return invalidf("reason must be at most %d bytes of text without control characters", slotfile.MaxLabelLen)
	}
	return p.updateThrottle(throttle.ChangePatience, func(st *throttle.State) (throttle.State, bool) {
		return throttle.Paused(st, time.Now(), d, p.reporter(reason)), true
	})
}

// Resume ends a pause and forgets every report (removing the state file):
// the limit is max again. Resuming a pool with no state does nothing.
func (p *Pool) Resume() error {
	if err := p.usable(); err != nil {
		return err
	}
	if exists, err := p.group.maker().Inspect(p.dir, EnvDir); err != nil || !exists {
		return err
	}
	err := throttle.Remove(p.dir, throttle.ChangePatience, p.group.maker().Create)
	if err == nil {
		p.throttleBad.Store(false)
	}
	return err
}

// reporter is this process, as a report records it.
func (p *Pool) reporter(reason string) throttle.Record {
	me := slotfile.Self()
	return throttle.Record{PID: me.PID, Host: me.Host, Command: me.Command, Label: p.label, Reason: reason}
}

// readThrottle is throttle.Load, logging an unusable file once.
func (p *Pool) readThrottle() *throttle.State {
	st, err := throttle.Load(p.dir)
	if err != nil && !p.throttleBad.Swap(true) {
		p.log().Error("llmslots: throttle state ignored", "dir", p.dir, "err", err)
	} else if st != nil {
		p.throttleBad.Store(false)
	}
	return st
}

// updateThrottle is throttle.Update, logging an unusable state replaced.
func (p *Pool) updateThrottle(patience time.Duration, change func(st *throttle.State) (throttle.State, bool)) error {
	if err := p.prepare(); err != nil {
		return err
	}
	unusable, err := throttle.Update(p.dir, patience, p.group.maker().Create, change)
	if unusable != nil {
		p.log().Error("llmslots: throttle state replaced", "dir", p.dir, "err", unusable)
	}
	return err
}

// guardThrottle is what a guard knows of the pool's throttling.
type guardThrottle struct {
	seen     bool      // the pool had a throttle state when the slot was granted
	reported bool      // Throttled was called
	decided  time.Time // when the grant was decided (tests judge by it)
	limit    int       // the effective limit of a gated grant; 0: ungated
	holders  int       // the holders a gated grant counted
}

// recheck keeps g, taken without the throttle lock, or gives it back (nil)
// as gateLocked decides if the state can refuse it. It is timed before the
// look: a later report came too late for it.
func (p *Pool) recheck(g *Guard, max int) *Guard {
	now := time.Now()
	st := p.readThrottle()
	g.th.seen = st != nil
	if !throttle.Restrictive(st, max, now) {
		g.th.decided = now
		return g
	}
	if kept, _, err := p.gateLocked(max, g); err == nil && kept != nil {
		return g
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	unregisterGuard(g)
	filelock.RemoveAndClose(g.file, g.path, g.info) // as Release does
	g.file = nil
	return nil
}

// tryAcquireGated is tryAcquire behind the gate, for the waiting loop: it
// looks before it takes, so a paused line stays still, and says when to
// look again (retry) where no release will wake the line.
func (p *Pool) tryAcquireGated(max int) (g *Guard, retry time.Time, err error) {
	now := time.Now()
	st := p.readThrottle()
	if !throttle.Restrictive(st, max, now) {
		g, soon, err := p.tryAcquire(max)
		if g != nil && p.recheck(g, max) == nil {
			return nil, time.Now(), nil // a report came since the look: the gate, at once
		}
		if soon {
			retry = time.Now().Add(slotfile.FreshAge) // a young empty slot file
		}
		return g, retry, err
	}
	if next := throttle.NextGrant(st, max, now); now.Before(next) {
		return nil, next, nil
	}
	g, retry, err = p.gateLocked(max, nil)
	if errors.Is(err, throttle.ErrBusy) {
		retry, err = time.Now().Add(10*time.Millisecond), nil
	}
	return g, retry, err
}

// gateLocked decides a grant under the throttle lock (two processes that
// both count L-1 holders and take would make L+1): none before NextGrant,
// nor at the limit. It takes the slot, or keeps have (counted out) or not.
func (p *Pool) gateLocked(max int, have *Guard) (g *Guard, retry time.Time, err error) {
	unlock, err := throttle.Lock(p.dir, throttle.GrantPatience, p.group.maker().Create)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer unlock()
	now := time.Now()
	st := p.readThrottle()
	if next := throttle.NextGrant(st, max, now); now.Before(next) {
		return nil, next, nil
	}
	limit, holders := throttle.Effective(st, max), p.countHolders(throttle.Span(st, max), have)
	if holders >= limit {
		return nil, time.Time{}, nil // a release wakes the waiter
	}
	decided := time.Now() // after the count, before the take, in the lock
	if g = have; g == nil {
		if g, _, err = p.tryAcquire(max); g == nil || err != nil {
			return nil, time.Time{}, err
		}
	}
	g.th = guardThrottle{seen: st != nil, decided: decided, limit: limit, holders: holders}
	if next, ok := throttle.Granted(st, max, now); ok {
		if err := throttle.Write(p.dir, next, p.group.maker().Create); err != nil {
			p.log().Warn("llmslots: throttle ramp not recorded", "dir", p.dir, "err", err)
		}
	}
	return g, time.Time{}, nil
}

// countHolders counts the slots below span held now (not stale), but except.
func (p *Pool) countHolders(span int, except *Guard) int {
	n := 0
	for id := range span {
		path := slotfile.SlotPath(p.dir, id)
		switch {
		case except != nil && except.path == path:
		case heldHere(path):
			n++
		default:
			if res, err := slotfile.Probe(path, slotfile.Look); err == nil && res.State == slotfile.Held {
				n++
			}
		}
	}
	return n
}

// afterRelease applies throttle.Released at the Release of a guard granted
// under a state and not reported (without the lock if it changes nothing).
func (g *Guard) afterRelease() {
	if !g.th.seen || g.th.reported || g.nested() || g.max <= 0 {
		return
	}
	p, max := g.pool, g.max
	if _, changes := throttle.Released(p.readThrottle(), max, time.Now()); !changes {
		return
	}
	err := p.updateThrottle(throttle.GrantPatience, func(st *throttle.State) (throttle.State, bool) {
		return throttle.Released(st, max, time.Now())
	})
	if err != nil && !errors.Is(err, throttle.ErrBusy) {
		p.log().Warn("llmslots: throttle state not updated at release", "dir", p.dir, "err", err)
	}
}

// throttleStatus is the state for Status and Progress; nil if none.
func (p *Pool) throttleStatus(max int) *ThrottleStatus {
	st, err := throttle.Load(p.dir)
	if err != nil {
		return &ThrottleStatus{Limit: max, Error: err.Error()}
	} else if st == nil {
		return nil
	}
	ts := &ThrottleStatus{Limit: throttle.Effective(st, max), RawLimit: st.Limit}
	if time.Now().Before(st.PauseUntil) {
		ts.PausedUntil, ts.Spacing = st.PauseUntil, st.Spacing
	}
	if !st.Last.At.IsZero() {
		r := ThrottleReport(st.Last)
		ts.LastReport = &r
	}
	return ts
}
