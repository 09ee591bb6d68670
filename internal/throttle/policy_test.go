package throttle

import (
	"reflect"
	"testing"
	"time"
)

// t0 is the instant every case is judged at; ms(n) is n milliseconds.
var t0 = time.Unix(1_800_000_000, 0)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func at(d time.Duration) time.Time { return t0.Add(d) }

// paused is a state after a pause of 1 s that ended at t0, spacing 100 ms:
// with limit 3 its ramp runs from t0 to t0+300ms.
func paused(lastGrant time.Time) *State {
	return &State{Limit: 3, PauseUntil: t0, Spacing: ms(100), LastGrant: lastGrant}
}

func TestEffective(t *testing.T) {
	for _, c := range []struct {
		name string
		st   *State
		max  int
		want int
	}{
		{"no state: max", nil, 4, 4},
		{"fraction cut", &State{Limit: 2.8}, 4, 2},
		{"rounding below an integer counts as it", &State{Limit: 2.9999999999}, 4, 3},
		{"never below 1", &State{Limit: 0.5}, 4, 1},
		{"never above max", &State{Limit: 8}, 4, 4},
		{"zero limit (no limit stored): max", &State{}, 4, 4},
	} {
		if got := Effective(c.st, c.max); got != c.want {
			t.Errorf("%s: Effective = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestRestrictiveAndRampEnd(t *testing.T) {
	for _, c := range []struct {
		name        string
		st          *State
		now         time.Time
		restrictive bool
		rampEnd     time.Time
	}{
		{"no state", nil, t0, false, time.Time{}},
		{"limit at max, no pause", &State{Limit: 4}, t0, false, time.Time{}},
		{"limit below max", &State{Limit: 3.5}, t0, true, time.Time{}},
		{"limit at max, below a larger max reported with", &State{Limit: 4, Ceiling: 6}, t0, true, time.Time{}},
		{"limit back at the larger max reported with", &State{Limit: 6, Ceiling: 6}, t0, false, time.Time{}},
		{"in the pause", &State{Limit: 4, PauseUntil: at(ms(10)), Spacing: ms(5)}, t0, true, at(ms(30))},
		{"in the ramp", &State{Limit: 4, PauseUntil: t0, Spacing: ms(5)}, at(ms(19)), true, at(ms(20))},
		{"after the ramp", &State{Limit: 4, PauseUntil: t0, Spacing: ms(5)}, at(ms(20)), false, at(ms(20))},
	} {
		if got := Restrictive(c.st, 4, c.now); got != c.restrictive {
			t.Errorf("%s: Restrictive = %v, want %v", c.name, got, c.restrictive)
		}
		if got := RampEnd(c.st, 4); !got.Equal(c.rampEnd) {
			t.Errorf("%s: RampEnd = %v, want %v", c.name, got, c.rampEnd)
		}
	}
}

func TestNextGrantAndGranted(t *testing.T) {
	for _, c := range []struct {
		name     string
		st       *State
		now      time.Time
		next     time.Time
		recorded bool // a grant at now is recorded (in the ramp)
	}{
		{"no state", nil, t0, t0, false},
		{"in the pause: its end", paused(time.Time{}), at(-ms(1)), t0, false},
		{"ramp, no grant yet: now", paused(time.Time{}), at(ms(1)), at(ms(1)), true},
		{"ramp, a grant a spacing ago: now", paused(at(ms(10))), at(ms(110)), at(ms(110)), true},
		{"ramp, a grant just made: a spacing after it", paused(at(ms(10))), at(ms(50)), at(ms(110)), true},
		{"after the ramp: now, nothing recorded", paused(at(ms(250))), at(ms(300)), at(ms(300)), false},
	} {
		if got := NextGrant(c.st, 4, c.now); !got.Equal(c.next) {
			t.Errorf("%s: NextGrant = %v, want %v", c.name, got.Sub(t0), c.next.Sub(t0))
		}
		if !c.next.Equal(c.now) {
			continue // no grant is made: Granted is not called
		}
		next, ok := Granted(c.st, 4, c.now)
		if ok != c.recorded || ok && !next.LastGrant.Equal(c.now) {
			t.Errorf("%s: Granted = %v, last grant %v; want recorded %v", c.name, ok, next.LastGrant.Sub(t0), c.recorded)
		}
	}
}

func TestThrottled(t *testing.T) {
	me := Record{PID: 42, Host: "h", Command: "codex", Label: "l"}
	for _, c := range []struct {
		name string
		st   *State
		r    Report
		want State
	}{
		{"first report, with a hint: 0.7 of max, pause for the hint, a tenth of it apart",
			nil, Report{Max: 4, Granted: at(-time.Second), RetryAfter: ms(300)},
			State{Limit: 2.8, WMax: 4, Decreased: t0, PauseUntil: at(ms(300)), Spacing: ms(30)}},
		{"work granted before the last decrease: same round, limit kept",
			&State{Limit: 2.8, WMax: 4, Decreased: at(-ms(10)), PauseUntil: at(ms(290)), Spacing: ms(30)},
			Report{Max: 4, Granted: at(-ms(20)), RetryAfter: ms(100)},
			State{Limit: 2.8, WMax: 4, Decreased: at(-ms(10)), PauseUntil: at(ms(290)), Spacing: ms(30)}},
		{"a longer hint extends the pause and resets the ramp",
			&State{Limit: 2.8, WMax: 4, Decreased: at(-ms(10)), PauseUntil: at(ms(10)), Spacing: ms(5), LastGrant: at(-ms(1))},
			Report{Max: 4, Granted: at(-ms(20)), RetryAfter: time.Minute},
			State{Limit: 2.8, WMax: 4, Decreased: at(-ms(10)), PauseUntil: at(time.Minute), Spacing: maxSpacing}},
		{"the level that failed fails again: one step back, not a cut",
			&State{Limit: 5, WMax: 5, Decreased: at(-time.Hour)},
			Report{Max: 8, Granted: at(-time.Second), RetryAfter: ms(10)},
			State{Limit: 4, WMax: 5, Decreased: t0, PauseUntil: at(ms(10)), Spacing: minSpacing}},
		{"a limit above the reporter's max is cut to it first",
			&State{Limit: 10, Decreased: at(-time.Hour)},
			Report{Max: 4, Granted: at(-time.Second), RetryAfter: ms(100)},
			State{Limit: 2.8, WMax: 4, Decreased: t0, PauseUntil: at(ms(100)), Spacing: ms(10)}},
		{"never below 1",
			&State{Limit: 1, WMax: 0, Decreased: at(-time.Hour)},
			Report{Max: 4, Granted: at(-time.Second), RetryAfter: ms(100)},
			State{Limit: 1, WMax: 1, Decreased: t0, PauseUntil: at(ms(100)), Spacing: ms(10)}},
		{"no hint: backoff 1 s, jittered into [0.5 s, 1 s)",
			nil, Report{Max: 4, Granted: at(-time.Second), Jitter: 0.5},
			State{Limit: 2.8, WMax: 4, Decreased: t0, PauseUntil: at(ms(750)), Spacing: ms(75), Backoff: 1}},
		{"no hint, a new round: the backoff doubles",
			&State{Limit: 4, Decreased: at(-time.Hour), Backoff: 1},
			Report{Max: 4, Granted: at(-time.Second)},
			State{Limit: 2.8, WMax: 4, Decreased: t0, PauseUntil: at(time.Second), Spacing: ms(100), Backoff: 2}},
		{"no hint, the same round: the backoff does not double",
			&State{Limit: 2.8, WMax: 4, Decreased: at(-ms(10)), Backoff: 1},
			Report{Max: 4, Granted: at(-time.Second)},
			State{Limit: 2.8, WMax: 4, Decreased: at(-ms(10)), PauseUntil: at(ms(500)), Spacing: ms(50), Backoff: 1}},
		{"no hint, many reports: capped at 2 min",
			&State{Limit: 1, WMax: 1, Decreased: at(-time.Hour), Backoff: 30},
			Report{Max: 4, Granted: at(-time.Second)},
			State{Limit: 1, WMax: 1, Decreased: t0, PauseUntil: at(time.Minute), Spacing: maxSpacing, Backoff: 31}},
		{"the slots counted are the largest max reported with",
			&State{Limit: 8, Ceiling: 8, Decreased: at(-time.Hour)},
			Report{Max: 4, Granted: at(-time.Second), RetryAfter: ms(100)},
			State{Limit: 2.8, WMax: 4, Ceiling: 8, Decreased: t0, PauseUntil: at(ms(100)), Spacing: ms(10)}},
		{"a hint beyond a day is cut to a day",
			nil, Report{Max: 1, Granted: at(-time.Second), RetryAfter: 72 * time.Hour},
			State{Limit: 1, WMax: 1, Decreased: t0, PauseUntil: at(MaxPause), Spacing: maxSpacing}},
	} {
		c.r.By = me
		var before State
		if c.st != nil {
			before = *c.st
		}
		got := Throttled(c.st, t0, c.r)
		c.want.Ceiling = max(c.want.Ceiling, c.r.Max)
		if c.want.Decreased.Equal(t0) {
			c.want.Raised = t0 // a decrease starts the clock of growth
		}
		c.want.Last = Record{At: t0, PID: 42, Host: "h", Command: "codex", Label: "l", Hint: max(c.r.RetryAfter, 0), Kind: "throttled"}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
		if c.st != nil && !reflect.DeepEqual(*c.st, before) {
			t.Errorf("%s: the state passed in was changed", c.name)
		}
	}
}

func TestPaused(t *testing.T) {
	rec := Record{PID: 7, Reason: "maintenance"}
	for _, c := range []struct {
		name string
		st   *State
		d    time.Duration
		want State
	}{
		{"no state: a pause at the highest limit", nil, time.Hour,
			State{Limit: MaxLimit, PauseUntil: at(time.Hour), Spacing: maxSpacing}},
		{"by hand, shorter than the pause on: it is what the user says",
			&State{Limit: 2, WMax: 3, PauseUntil: at(time.Hour), Spacing: maxSpacing, LastGrant: at(-ms(1))}, ms(100),
			State{Limit: 2, WMax: 3, PauseUntil: at(ms(100)), Spacing: ms(10)}},
	} {
		got := Paused(c.st, t0, c.d, rec)
		c.want.Last = Record{At: t0, PID: 7, Hint: c.d, Kind: "pause", Reason: "maintenance"}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

// TestReleased: with max 8.
func TestReleased(t *testing.T) {
	soon := at(-GrowEvery / 100) // raised just now: the round, not the clock, bounds the step
	for _, c := range []struct {
		name    string
		st      *State
		want    State
		changes bool
	}{
		{"no state", nil, State{}, false},
		{"at max, no backoff: nothing to do", &State{Limit: 8}, State{}, false},
		{"at max, a backoff: it ends", &State{Limit: 8, Backoff: 3}, State{Limit: 8}, true},
		{"one slot per round: 1/limit", &State{Limit: 2, Backoff: 1, Raised: soon}, State{Limit: 2.5, Raised: t0}, true},
		{"a slot per GrowEvery since the last raise, when rounds are long",
			&State{Limit: 4, Raised: at(-GrowEvery / 2)}, State{Limit: 4.5, Raised: t0}, true},
		{"rounds are longer still: a slot at most per release",
			&State{Limit: 2, Raised: at(-time.Hour)}, State{Limit: 3, Raised: t0}, true},
		{"just below the level that failed: SlowRounds times slower",
			&State{Limit: 3, WMax: 4, Decreased: soon, Raised: soon}, State{Limit: 3 + 1.0/3/SlowRounds, WMax: 4, Decreased: soon, Raised: t0}, true},
		{"the slow band ends ProbeAfter after the decrease",
			&State{Limit: 3, WMax: 4, Decreased: at(-ProbeAfter), Raised: soon}, State{Limit: 3 + 1.0/3, WMax: 4, Decreased: at(-ProbeAfter), Raised: t0}, true},
		{"past the level that failed: forgotten", &State{Limit: 4.9, WMax: 4, Raised: soon}, State{Limit: 4.9 + 1/4.9, Raised: t0}, true},
		{"never above max", &State{Limit: 7.9, Raised: soon}, State{Limit: 8, Raised: t0}, true},
	} {
		got, changes := Released(c.st, 8, t0)
		if changes != c.changes || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Released = %+v, %v; want %+v, %v", c.name, got, changes, c.want, c.changes)
		}
	}
}
