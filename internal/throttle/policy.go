package throttle

import (
	"math"
	"time"
)

// The policy: pure functions of a state (nil: none), an event and the
// time. A round is as many releases as the limit.
const (
	decreaseFactor = 0.7 // a level one above capacity falls back to it
	// SlowRounds: the limit grows by one per round, but by one per
	// SlowRounds across the level below the one that failed.
	SlowRounds = 16
	// Rounds are jobs, which may last minutes: a release also raises the
	// limit by a slot per GrowEvery since the last raise (at most one), and
	// the slow band ends ProbeAfter after the decrease.
	GrowEvery  = 250 * time.Millisecond
	ProbeAfter = time.Second
	// No hint: a pause of base, doubled per report till a success, up to cap.
	backoffBase = time.Second
	backoffCap  = 2 * time.Minute
	maxBackoff  = 64
	// MaxPause bounds any pause, against a hint or a clock gone wrong
	// ("try again in 5 hours" is honoured; "in 3 days" is not).
	MaxPause = 24 * time.Hour
	// Grants after a pause are a tenth of it apart: the line must not stampede.
	minSpacing = 5 * time.Millisecond
	maxSpacing = 500 * time.Millisecond
)

// Effective is the limit a caller whose max is ceiling obeys under st:
// the integer part of the shared limit, at least 1 and at most ceiling.
func Effective(st *State, ceiling int) int {
	if st == nil || st.Limit <= 0 {
		return ceiling
	}
	return min(ceiling, max(1, int(math.Floor(st.Limit+1e-9)))) // 3 may be 2.99999...
}

// Span is how many slots a caller with max m counts holders in: also those
// of reporters with a larger max, whose lowered limit binds it too.
func Span(st *State, m int) int {
	if st == nil {
		return m
	}
	return min(MaxLimit, max(m, st.Ceiling))
}

// Restrictive reports whether st can refuse a grant to a caller with max
// at now; if not, a grant needs neither the lock nor a count of holders.
func Restrictive(st *State, max int, now time.Time) bool {
	return st != nil && (Effective(st, Span(st, max)) < Span(st, max) || now.Before(RampEnd(st, max)))
}

// RampEnd is when grants stop being spaced after the pause (zero if none):
// once as many as the limit have been spaced.
func RampEnd(st *State, max int) time.Time {
	if st == nil || st.PauseUntil.IsZero() {
		return time.Time{}
	}
	return st.PauseUntil.Add(time.Duration(Effective(st, max)) * st.Spacing)
}

// NextGrant is the earliest instant st allows a grant to a caller with
// max. No event marks it (a pause ends silently): a waiter sets a timer.
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

// Granted is st after a grant at now, and whether it changed: a grant in
// the ramp is recorded, so the next one comes a spacing later.
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
	Max        int           // the reporter's max, the ceiling of the limit
	Granted    time.Time     // when the reported work was granted its slot
	RetryAfter time.Duration // the provider's hint; 0: none
	Jitter     float64       // in [0, 1): places a backoff b in [b/2, b)
	By         Record        // who reports; Throttled sets the rest
}

// Throttled is st after report r at now: a pause for the hint (or the
// backoff), and a lower limit. A report of work granted before the last
// decrease is the same congestion: it neither lowers nor doubles again.
func Throttled(st *State, now time.Time, r Report) State {
	next := State{Limit: float64(r.Max)}
	if st != nil {
		next = *st
	}
	next.Limit, next.Ceiling = min(next.Limit, float64(r.Max)), max(next.Ceiling, r.Max)
	newRound := r.Granted.After(next.Decreased)
	if newRound {
		eff, failedBefore := Effective(&next, r.Max), next.WMax
		next.WMax = eff
		if failedBefore > 1 && eff >= failedBefore {
			// The level that failed last time failed again: step back to
			// the one below, known good, not down by a third.
			next.Limit = float64(failedBefore - 1)
		} else {
			next.Limit = math.Max(1, next.Limit*decreaseFactor)
		}
		next.Decreased, next.Raised = now, now
	}
	hint := max(r.RetryAfter, 0)
	pause := hint
	if pause == 0 {
		if newRound || next.Backoff == 0 {
			next.Backoff = min(next.Backoff+1, maxBackoff)
		}
		pause = next.backoff(r.Jitter)
	}
	next.extendPause(now, pause)
	next.Last = r.By
	next.Last.At, next.Last.Hint, next.Last.Kind, next.Last.Reason = now, hint, "throttled", ""
	return next
}

// Paused is st after a pause by hand at now for d, recorded with rec:
// what the user says, even if shorter than one already on.
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

// backoff is the pause of a report without a hint: backoffBase doubled
// per report since the last success, up to backoffCap, placed by jitter.
func (st *State) backoff(jitter float64) time.Duration {
	b := min(backoffCap, backoffBase<<min(st.Backoff-1, 20))
	return b/2 + time.Duration(jitter*float64(b/2))
}

// extendPause makes the pause last at least until now+d (at most MaxPause).
func (st *State) extendPause(now time.Time, d time.Duration) {
	d = min(d, MaxPause)
	if until := now.Add(d); until.After(st.PauseUntil) {
		st.PauseUntil = until
		st.Spacing = min(maxSpacing, max(minSpacing, d/10))
		st.LastGrant = time.Time{}
	}
}

// Released is st after the release at now of work that was not
// throttled, and whether it changed: the backoff ends, and the limit grows
// by a slot per round or per GrowEvery, whichever comes first, slower
// below the level that failed (until ProbeAfter), forgotten once passed.
func Released(st *State, max int, now time.Time) (State, bool) {
	top := float64(max)
	if st == nil || st.Limit >= top && st.Backoff == 0 {
		return State{}, false
	}
	next := *st
	next.Backoff = 0
	if next.Limit < top {
		step := math.Max(1/next.Limit, math.Min(1, now.Sub(next.Raised).Seconds()/GrowEvery.Seconds()))
		if Effective(&next, max) == next.WMax-1 && now.Sub(next.Decreased) < ProbeAfter {
			step /= SlowRounds
		}
		next.Limit, next.Raised = math.Min(top, next.Limit+step), now
		if next.Limit >= float64(next.WMax+1) {
			next.WMax = 0
		}
	}
	return next, true
}

// UsageLimited is st after a usage cap reported at now: nobody is granted
// a slot for r.RetryAfter, the time left to the provider's reset (0 if it
// named none: the shared backoff, doubled per report until a success).
// The limit is kept: a cap says "nobody until then", not "fewer at once".
func UsageLimited(st *State, now time.Time, r Report) State {
	next := State{Limit: float64(r.Max)}
	if st != nil {
		next = *st
	}
	next.Ceiling = max(next.Ceiling, r.Max)
	pause := max(r.RetryAfter, 0)
	if pause == 0 {
		next.Backoff = min(next.Backoff+1, maxBackoff)
		pause = next.backoff(r.Jitter)
	}
	next.extendPause(now, pause)
	next.Last = r.By
	next.Last.At, next.Last.Hint, next.Last.Kind = now, min(pause, MaxPause), "usage"
	return next
}
