package llmslots

import (
	"errors"
	"math/rand/v2"
	"os"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/slotfile"
	"github.com/llmslots/llmslots/internal/throttle"
)

// Throttling: one process's 429 slows every process of the pool. The
// state's format, its store and the policy are internal/throttle; here
// are the public surface and the grant gate that obeys the state.

// A state's limit is at most MaxSlots: this fails to compile otherwise.
const _ = uint(MaxSlots-throttle.MaxLimit) + uint(throttle.MaxLimit-MaxSlots)

// ThrottleStatus is the throttling state of a pool, in Status and
// Progress; the zero value means no report was ever made.
type ThrottleStatus struct {
	// Limit is the effective limit: how many may hold a slot at once now,
	// at most Status.Max; reports lower it, un-throttled releases raise
	// it back towards Max.
	Limit int `json:"limit"`
	// RawLimit is the shared limit as stored, fractional: growth comes in
	// fractions of a slot per release.
	RawLimit float64 `json:"raw_limit"`
	// PausedUntil is when the pause ends; zero (omitted) when none is on.
	PausedUntil time.Time `json:"paused_until,omitzero"`
	// Spacing is how far apart grants come once the pause ends.
	Spacing time.Duration `json:"spacing_ns,omitempty"`
	// LastReport is the last report; nil if none is recorded.
	LastReport *ThrottleReport `json:"last_report,omitempty"`
	// Error says why the state file was ignored (corrupt, foreign); the
	// pool then behaves as if no report had been made.
	Error string `json:"error,omitempty"`
}

// ThrottleReport is one report: Guard.Throttled, or a pause by hand.
type ThrottleReport struct {
	At   time.Time `json:"at"`
	PID  int       `json:"pid"`
	Host string    `json:"host"`
	// Hint is the provider's retry-after; 0 when none was given.
	Hint time.Duration `json:"hint_ns"`
	// Kind is "throttled" (Guard.Throttled) or "pause" (Pool.Pause).
	Kind    string `json:"kind"`
	Reason  string `json:"reason,omitempty"`
	Command string `json:"command,omitempty"`
	Label   string `json:"label,omitempty"`
}

// Throttled reports that the work done under this slot was throttled by
// the provider (an HTTP 429, "rate limit exceeded", "usage limit reached,
// try again in ..."); retryAfter is the provider's hint of when to try
// again, 0 when it gave none. Call it where the 429 is seen, before or
// after Release. Every process of the pool is then slowed, host-wide:
//   - No slot of the pool is granted until retryAfter has passed (with no
//     hint: a backoff of 1 s, doubled by each report that follows without
//     a successful release in between, up to 2 min, with jitter). Holders
//     keep their slots; waiters keep their places in line. When the pause
//     ends, grants resume one at a time, spaced by a tenth of the pause
//     (5-500 ms), so the line does not stampede the provider.
//   - The pool's effective limit is multiplied by 0.7 (never below 1),
//     once per round of work: a report about work that was granted before
//     the last decrease is the same congestion and does not lower it
//     again. Each release of a guard that was not throttled raises the
//     limit again, by one slot per round (as many releases as the limit),
//     more slowly just below the level that failed, up to max.
//
// The state lives in the pool's directory (.throttle), so it is shared by
// every process and survives any of them crashing; ReadStatus shows it and
// Pool.Resume clears it. Throttled on a nil Guard does nothing; a failure
// to record the report is logged (the caller's work has failed anyway).
func (g *Guard) Throttled(retryAfter time.Duration) {
	if g == nil || g.pool == nil {
		return
	}
	g.mu.Lock()
	g.th.reported = true
	r := throttle.Report{Max: g.max, Granted: g.acquired, RetryAfter: retryAfter, Jitter: rand.Float64(), By: g.pool.reporter()}
	g.mu.Unlock()
	if r.Max <= 0 {
		r.Max = MaxSlots
	}
	if err := g.pool.updateThrottle(throttle.ChangePatience, func(st *throttle.State) (throttle.State, bool) {
		return throttle.Throttled(st, time.Now(), r), true
	}); err != nil {
		g.pool.log().Warn("llmslots: the throttle report was not recorded", "dir", g.pool.dir, "err", err)
	}
}

// Pause pauses the pool by hand for d: no process is granted a slot until
// d has passed (holders keep theirs, waiters keep their places); the limit
// is left as it is. reason is recorded for status readers. d must be
// positive and at most 24 h.
func (p *Pool) Pause(d time.Duration, reason string) error {
	if err := p.usable(); err != nil {
		return err
	}
	if d <= 0 || d > throttle.MaxPause {
		return invalidf("pause must be > 0 and at most %v, got %v", throttle.MaxPause, d)
	}
	if err := checkLabel(reason); err != nil {
		return invalidf("reason must be at most %d bytes of text without control characters", slotfile.MaxLabelLen)
	}
	rec := p.reporter()
	rec.Reason = reason
	return p.updateThrottle(throttle.ChangePatience, func(st *throttle.State) (throttle.State, bool) {
		return throttle.Paused(st, time.Now(), d, rec), true
	})
}

// Resume ends a pause and forgets every report: the state file is
// removed, the limit is max again and acquiring costs what it did before
// any report. Resuming a pool with no state does nothing.
func (p *Pool) Resume() error {
	if err := p.usable(); err != nil {
		return err
	}
	if exists, err := p.group.maker().Inspect(p.dir, EnvDir); err != nil || !exists {
		return err
	}
	err := throttle.Remove(p.dir, throttle.ChangePatience, p.newThrottleFile)
	if err == nil {
		p.throttleBad.Store(false)
	}
	return err
}

// reporter is this process, as a report records it.
func (p *Pool) reporter() throttle.Record {
	me := slotfile.Self()
	return throttle.Record{PID: me.PID, Host: me.Host, Command: me.Command, Label: p.label}
}

// newThrottleFile is the pool's throttle.Create: the group's mode and group.
func (p *Pool) newThrottleFile(path string) (*os.File, error) {
	return p.group.maker().Create(path)
}

// readThrottle is throttle.Load that logs an unusable file once (until a
// usable one is read again) and treats it as none: never worse than no
// reports, and the next report or `llmslots resume` replaces it.
func (p *Pool) readThrottle() *throttle.State {
	st, err := throttle.Load(p.dir)
	if err != nil && !p.throttleBad.Swap(true) {
		p.log().Error("llmslots: throttle state ignored", "dir", p.dir, "err", err)
	} else if st != nil {
		p.throttleBad.Store(false)
	}
	return st
}

// updateThrottle is throttle.Update in the pool's directory, made if need
// be, logging an unusable state that it replaced.
func (p *Pool) updateThrottle(patience time.Duration, change func(st *throttle.State) (throttle.State, bool)) error {
	if err := p.prepare(); err != nil {
		return err
	}
	unusable, err := throttle.Update(p.dir, patience, p.newThrottleFile, change)
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

// tryAcquireFast is the uncontended path's attempt: take, then recheck.
// With no state that costs one failed open more than tryAcquire. The look
// comes after the take, so a report written before the take is seen; a
// slot refused is given back, and the caller waits in line.
func (p *Pool) tryAcquireFast(max int) (*Guard, error) {
	g, _, err := p.tryAcquire(max)
	if g == nil || err != nil {
		return g, err
	}
	return p.recheck(g, max), nil
}

// recheck decides whether g, a slot taken without the throttle lock, may
// be kept: yes with no state or one that cannot refuse it, else as
// gateLocked decides; refused, it is given back (nil). The decision is
// timed before the look: a report written after it came too late for it.
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
	g.giveBack()
	return nil
}

// giveBack undoes a grant the gate refused: the slot's name is removed
// under its lock, as Release does.
func (g *Guard) giveBack() {
	g.mu.Lock()
	defer g.mu.Unlock()
	unregisterGuard(g)
	if g.file != nil {
		filelock.RemoveAndClose(g.file, g.path, g.info)
	}
	g.file = nil
}

// tryAcquireGated is tryAcquire behind the gate, for the waiting loop.
// It reads the state before it takes, so a paused pool's line stays still
// (a take and a give-back at each look would wake it for nothing), and
// says when to look again (retry) where no lock's release will: a pause's
// end, the ramp's next step, a young empty slot file old enough to judge.
func (p *Pool) tryAcquireGated(max int) (g *Guard, retry time.Time, err error) {
	now := time.Now()
	st := p.readThrottle()
	if !throttle.Restrictive(st, max, now) {
		g, soon, err := p.tryAcquire(max)
		if soon {
			retry = time.Now().Add(slotfile.FreshAge)
		}
		// A report may come between the read and the take: recheck.
		if g != nil {
			if g = p.recheck(g, max); g == nil {
				retry = time.Now() // a state came: through the gate, at once
			}
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

// gateLocked decides a grant under the throttle lock: none before
// throttle.NextGrant, nor while the holders counted reach the effective
// limit. With have nil it takes the slot under the lock;
// with have (a slot taken without the lock) it decides whether to keep
// that one, counting it out, and returns it or nil.
//
// Why a lock: two processes that both count L-1 holders and both take
// would make L+1; both checking after taking could both give back, or
// both keep. Under the lock the count and the take are one step. A slot
// taken without it (its look found no state an instant before the first
// report) was decided before the report existed.
func (p *Pool) gateLocked(max int, have *Guard) (g *Guard, retry time.Time, err error) {
	unlock, err := throttle.Lock(p.dir, throttle.GrantPatience, p.newThrottleFile)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer unlock()
	now := time.Now()
	st := p.readThrottle()
	if next := throttle.NextGrant(st, max, now); now.Before(next) {
		return nil, next, nil
	}
	limit, holders := throttle.Effective(st, max), p.countHolders(max, have)
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
		if err := throttle.Write(p.dir, next, p.newThrottleFile); err != nil {
			p.log().Warn("llmslots: throttle ramp not recorded", "dir", p.dir, "err", err)
		}
	}
	return g, time.Time{}, nil
}

// countHolders counts the slots below max held now: this process's own
// (but not except), and any other whose lock is taken. Counted, not
// inferred from slot ids: a dead holder's file does not count.
func (p *Pool) countHolders(max int, except *Guard) int {
	n := 0
	for id := range max {
		path := slotfile.SlotPath(p.dir, id)
		switch {
		case except != nil && except.path == path:
		case heldHere(path):
			n++
		default:
			if _, err := os.Lstat(path); err == nil {
				if res, err := slotfile.Probe(path, slotfile.Look); err == nil && res.State == slotfile.Held {
					n++
				}
			}
		}
	}
	return n
}

// afterRelease, at Release of a guard granted under a state and not
// reported, raises the limit and ends the backoff (throttle.Released). A
// guard that saw no state has nothing to raise, and a state that needs no
// change is read without the lock.
func (g *Guard) afterRelease() {
	if !g.th.seen || g.th.reported || g.nested() || g.max <= 0 {
		return
	}
	p, max := g.pool, g.max
	if _, changes := throttle.Released(p.readThrottle(), max); !changes {
		return
	}
	err := p.updateThrottle(throttle.GrantPatience, func(st *throttle.State) (throttle.State, bool) {
		return throttle.Released(st, max)
	})
	if err != nil && !errors.Is(err, throttle.ErrBusy) {
		p.log().Warn("llmslots: throttle state not updated at release", "dir", p.dir, "err", err)
	}
}

// throttleStatus is the state as Status and Progress show it; nil when
// the pool has no throttle state.
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
