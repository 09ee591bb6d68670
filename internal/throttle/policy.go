package throttle

import (
	"math"
	"time"
)

// The policy: how reports, releases and pauses change the state, and what
// a state allows a caller with a given max at a given instant. Every
// function here is pure: a nil *State means the pool has no (usable)
// state, and a function that returns a State returns a new one, leaving
// its argument as it was. The unit of growth is a round: as many releases
// as the limit, roughly one holding time, whatever the work is.
const (
	// decreaseFactor multiplies the limit at a report (AIMD's decrease);
	// 0.7: a level one above the provider's capacity falls back to it,
	// and a large drop takes a few reports, one per round at most.
	decreaseFactor = 0.7
	// SlowRounds: the limit grows by one per round, but by one per
	// SlowRounds rounds across the last level below the one that failed
	// (WMax): the pool probes the provider's known limit rarely, and goes
	// past it at full speed once a probe succeeds.
	SlowRounds = 16
	// backoffBase and backoffCap bound the pause after a report with no
	// hint: base, then doubled per report that follows without a success
	// in between, jittered into [b/2, b).
	backoffBase = time.Second
	backoffCap  = 2 * time.Minute
	// maxBackoff bounds the count of reports without a hint (the doubling
	// stops at backoffCap long before).
	maxBackoff = 64
	// MaxPause bounds any pause, against a hint or a clock gone wrong
	// ("usage limit, try again in 5 hours" is honoured; "in 3 days" is
	// not), and a pause by hand.
	MaxPause = 24 * time.Hour
	// minSpacing and maxSpacing bound the spacing of grants once a pause
	// ends (a tenth of the pause), so the line does not stampede.
	minSpacing = 5 * time.Millisecond
	maxSpacing = 500 * time.Millisecond
)

// Effective is the limit a caller with max obeys under st: the integer
// part of the shared limit, at least 1 and at most max.
func Effective(st *State, max int) int {
	if st == nil || st.Limit <= 0 {
		return max
	}
	// 1e-9: a limit raised to 3 by fractions may be stored as 2.99999...
	return min(max, max1(int(math.Floor(st.Limit+1e-9))))
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// Restrictive reports whether st can refuse a grant to a caller with max
// at now: a pause or its ramp is on, or the limit is below max. When it
// cannot, a grant needs neither the lock nor a count of the holders.
func Restrictive(st *State, max int, now time.Time) bool {
	return st != nil && (Effective(st, max) < max || now.Before(RampEnd(st, max)))
}

// RampEnd is when grants stop being spaced after the pause: once as many
// grants as the limit have had their spacing. Zero when no pause was set.
func RampEnd(st *State, max int) time.Time {
	if st == nil || st.PauseUntil.IsZero() {
		return time.Time{}
	}
	return st.PauseUntil.Add(time.Duration(Effective(st, max)) * st.Spacing)
}

// NextGrant is the earliest instant st allows a grant to a caller with
// max: the pause's end while it is on, the last grant plus the spacing in
// the ramp after it; otherwise now. A caller that must wait has no event
// to wake it at that instant (a pause ends silently), so it sets a timer.
func NextGrant(st *State, max int, now time.Time) time.Time {
	switch {
	case st == nil:
		return now
	case now.Before(st.PauseUntil):
		return st.PauseUntil
	case now.Before(RampEnd(st, max)) && !st.LastGrant.IsZero() && now.Sub(st.LastGrant) < st.Spacing:
		return st.LastGrant.Add(st.Spacing)
	}
	return now
}

// Granted is st after a grant at now to a caller with max, and whether it
// changed: in the ramp the grant is recorded, so that the next one comes
// a spacing later; otherwise nothing is (a grant is not an event of the
// state). The caller made the grant under the lock, at or after NextGrant.
func Granted(st *State, max int, now time.Time) (State, bool) {
	if st == nil || !now.Before(RampEnd(st, max)) {
		return State{}, false
	}
	next := *st
	next.LastGrant = now
	return next, true
}

// A Report is what Throttled needs of one report of throttled work.
type Report struct {
	// Max is the reporter's max, the ceiling of the limit.
	Max int
	// Granted is when the reported work was granted its slot.
	Granted time.Time
	// RetryAfter is the provider's hint of when to try again; 0: none.
	RetryAfter time.Duration
	// Jitter, in [0, 1), places a backoff without a hint in [b/2, b), so
	// processes that were throttled together do not retry together.
	Jitter float64
	// By says who reports (PID, Host, Command, Label); Throttled sets the
	// rest of the record.
	By Record
}

// Throttled is st after report r at now: a pause until the hint has
// passed (with none, the backoff, doubled by each report that follows
// without a success in between), and a lower limit, once per round.
// A report about work granted before the last decrease is the same
// congestion reported again: it pauses, but does not lower the limit
// further, and does not double the backoff.
func Throttled(st *State, now time.Time, r Report) State {
	next := State{Limit: float64(r.Max)}
	if st != nil {
		next = *st
	}
	next.Limit = min(next.Limit, float64(r.Max))
	sameRound := !r.Granted.After(next.Decreased)
	if !sameRound {
		eff, failedBefore := Effective(&next, r.Max), next.WMax
		next.WMax = eff
		if failedBefore > 1 && eff >= failedBefore {
			// A probe of the level that failed last time failed again:
			// the level below it is known good, so step back to it rather
			// than cut by decreaseFactor. At a steady provider limit the
			// pool then loses one level for one round at each probe, not
			// a third of its slots.
			next.Limit = float64(failedBefore - 1)
		} else {
			next.Limit = math.Max(1, next.Limit*decreaseFactor)
		}
		next.Decreased = now
	}
	hint := max(r.RetryAfter, 0)
	pause := hint
	if pause == 0 {
		if !sameRound || next.Backoff == 0 {
			next.Backoff = min(next.Backoff+1, maxBackoff)
		}
		b := min(backoffCap, backoffBase<<min(next.Backoff-1, 20))
		pause = b/2 + time.Duration(r.Jitter*float64(b/2))
	}
	next.extendPause(now, pause)
	next.Last = r.By
	next.Last.At, next.Last.Hint, next.Last.Kind, next.Last.Reason = now, hint, "throttled", ""
	return next
}

// Paused is st after a pause by hand at now, for d (at most MaxPause),
// recorded with rec (its At, Hint and Kind are set here). The pause is
// what the user says, even if shorter than one on already; the limit is
// left as it is.
func Paused(st *State, now time.Time, d time.Duration, rec Record) State {
	next := State{Limit: MaxLimit}
	if st != nil {
		next = *st
	}
	next.PauseUntil = time.Time{}
	next.extendPause(now, d)
	next.Last = rec
	next.Last.At, next.Last.Hint, next.Last.Kind = now, d, "pause"
	return next
}

// extendPause makes the pause last at least until now+d (never shortens
// one already on), and sets the ramp's spacing: a tenth of the pause.
func (st *State) extendPause(now time.Time, d time.Duration) {
	d = min(d, MaxPause)
	if until := now.Add(d); until.After(st.PauseUntil) {
		st.PauseUntil = until
		st.Spacing = min(maxSpacing, max(minSpacing, d/10))
		st.LastGrant = time.Time{}
	}
}

// Released is st after the release of work that was not throttled, by a
// caller with max, and whether it changed: the backoff ends, and the
// limit grows by 1/limit (one slot per round), SlowRounds times more
// slowly across the level below the one that failed; past that level,
// the failure is forgotten. At max with no backoff, nothing changes, and
// the caller need not take the lock.
func Released(st *State, max int) (State, bool) {
	if st == nil || st.Limit >= float64(max) && st.Backoff == 0 {
		return State{}, false
	}
	next := *st
	next.Backoff = 0
	if next.Limit < float64(max) {
		step := 1 / next.Limit
		if int(math.Floor(next.Limit+1e-9)) == next.WMax-1 {
			step /= SlowRounds
		}
		next.Limit = math.Min(float64(max), next.Limit+step)
		if next.Limit >= float64(next.WMax+1) {
			next.WMax = 0
		}
	}
	return next, true
}
