package llmslots

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/slotfile"
	"github.com/llmslots/llmslots/internal/textsafe"
)

// Throttling: one process's 429 slows every process of the pool.
//
// A pool that has never had a report has no state file, and acquiring
// costs what it always did plus one failed lstat of .throttle (made after
// the slot is taken, see gateFast). Once a report is made, the pool's
// directory holds .throttle, shared by every process of the pool:
//
//	llmslots-throttle 1
//	limit=4.2            the effective limit, fractional (its integer part counts)
//	wmax=6               the level the last decrease was made from
//	decreased=<ns>       when (unix nanoseconds, wall clock: shared by every process)
//	pause_until=<ns>     no grant before this
//	spacing=<duration>   after the pause, grants come at least this far apart
//	last_grant=<ns>      the last grant made in that ramp
//	backoff=<n>          reports without a hint since the last success
//	report_* ...         the last report: when, by whom, the hint, the reason
//
// It is replaced whole (a temporary file renamed over it), so a reader
// without a lock sees the old state or the new one, never a mix; every
// change is made under an exclusive flock of .throttle.lock, read afresh
// inside the lock. Nothing in it names a live process, so a process that
// crashes at any point leaves a valid state (at worst, a temporary file
// under the newborn prefix, which cleanup removes). A file that does not
// parse (corrupt, foreign, from a future version) is logged as an error and
// ignored: the pool then behaves as if it had no reports, never worse, and
// the next report or `llmslots resume` replaces it.
const (
	throttleFileName = ".throttle"
	throttleLockName = ".throttle.lock"
	throttleMagic    = "llmslots-throttle 1"
	// maxThrottleRead bounds what a reader takes from .throttle.
	maxThrottleRead = 4096
)

// The adaptive limit's constants. The unit of growth is a round: as many
// releases as the limit, roughly one holding time, whatever the work is.
const (
	// decreaseFactor multiplies the limit at a report (AIMD's decrease);
	// 0.7: a level one above the provider's capacity falls back to it,
	// and a large drop takes a few reports, one per round at most.
	decreaseFactor = 0.7
	// slowRounds: the limit grows by one per round, but by one per
	// slowRounds rounds across the last level below the one that failed
	// (wmax): the pool probes the provider's known limit rarely, and goes
	// past it at full speed once a probe succeeds.
	slowRounds = 16
	// backoffBase and backoffCap bound the pause after a report with no
	// hint: base, then doubled per report that follows without a success
	// in between, jittered into [b/2, b).
	backoffBase = time.Second
	backoffCap  = 2 * time.Minute
	// maxPause bounds any pause, against a hint or a clock gone wrong
	// ("usage limit, try again in 5 hours" is honoured; "in 3 days" is not).
	maxPause = 24 * time.Hour
	// minSpacing and maxSpacing bound the spacing of grants once a pause
	// ends (a tenth of the pause), so the line does not stampede.
	minSpacing = 5 * time.Millisecond
	maxSpacing = 500 * time.Millisecond
)

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

// throttleState is the content of .throttle.
type throttleState struct {
	limit      float64
	wmax       int
	decreased  time.Time
	pauseUntil time.Time
	spacing    time.Duration
	lastGrant  time.Time
	backoff    int
	report     ThrottleReport
}

// effective is the limit a caller with max obeys now.
func (st *throttleState) effective(max int) int {
	if st == nil || st.limit <= 0 {
		return max
	}
	return min(max, max1(int(math.Floor(st.limit+1e-9))))
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// restrictive reports whether the state can refuse a grant to a caller
// with max at now: a pause or its ramp is on, or the limit is below max.
func (st *throttleState) restrictive(max int, now time.Time) bool {
	return st != nil && (st.effective(max) < max || now.Before(st.rampEnd(max)))
}

// rampEnd is when grants stop being spaced after the pause.
func (st *throttleState) rampEnd(max int) time.Time {
	if st.pauseUntil.IsZero() {
		return time.Time{}
	}
	return st.pauseUntil.Add(time.Duration(st.effective(max)) * st.spacing)
}

func (st *throttleState) marshal() []byte {
	var b bytes.Buffer
	ns := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixNano()
	}
	fmt.Fprintf(&b, "%s\nlimit=%s\nwmax=%d\ndecreased=%d\npause_until=%d\nspacing=%s\nlast_grant=%d\nbackoff=%d\n",
		throttleMagic, strconv.FormatFloat(st.limit, 'f', 4, 64), st.wmax, ns(st.decreased), ns(st.pauseUntil),
		st.spacing, ns(st.lastGrant), st.backoff)
	r := st.report
	if !r.At.IsZero() {
		fmt.Fprintf(&b, "report_at=%d\nreport_pid=%d\nreport_host=%s\nreport_hint=%s\nreport_kind=%s\nreport_reason=%s\nreport_command=%s\nreport_label=%s\n",
			r.At.UnixNano(), r.PID, oneLine(r.Host, 256), r.Hint, oneLine(r.Kind, 16), oneLine(r.Reason, 256),
			oneLine(r.Command, 256), oneLine(r.Label, slotfile.MaxLabelLen))
	}
	return b.Bytes()
}

// oneLine makes s fit on one line of the state file: control characters
// become spaces, and it is cut to n bytes on a rune boundary.
func oneLine(s string, n int) string {
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if textsafe.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?")))
	for len(s) > n {
		_, size := lastRune(s)
		s = s[:len(s)-size]
	}
	return s
}

func lastRune(s string) (rune, int) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i]&0xc0 != 0x80 {
			return rune(s[i]), len(s) - i
		}
	}
	return 0, 1
}

// parseThrottle reads a state file's content; an error says what is wrong
// with it.
func parseThrottle(data []byte) (*throttleState, error) {
	if len(data) >= maxThrottleRead {
		return nil, fmt.Errorf("larger than %d bytes", maxThrottleRead)
	}
	first, rest, _ := strings.Cut(string(data), "\n")
	if first != throttleMagic {
		return nil, fmt.Errorf("does not start with %q", throttleMagic)
	}
	st := &throttleState{}
	seenLimit := false
	for _, line := range strings.Split(rest, "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %q is not key=value", oneLine(line, 64))
		}
		var err error
		nsTime := func() time.Time {
			var n int64
			n, err = strconv.ParseInt(v, 10, 64)
			if n <= 0 {
				return time.Time{}
			}
			return time.Unix(0, n)
		}
		atoi := func() int {
			var n int
			n, err = strconv.Atoi(v)
			return n
		}
		dur := func() time.Duration {
			var d time.Duration
			d, err = time.ParseDuration(v)
			return d
		}
		switch k {
		case "limit":
			st.limit, err = strconv.ParseFloat(v, 64)
			if err == nil && (math.IsNaN(st.limit) || st.limit < 1 || st.limit > MaxSlots) {
				err = errors.New("out of range 1..1024")
			}
			seenLimit = true
		case "wmax":
			st.wmax = atoi()
		case "decreased":
			st.decreased = nsTime()
		case "pause_until":
			st.pauseUntil = nsTime()
		case "spacing":
			st.spacing = dur()
			if err == nil && (st.spacing < 0 || st.spacing > maxSpacing) {
				err = errors.New("out of range")
			}
		case "last_grant":
			st.lastGrant = nsTime()
		case "backoff":
			st.backoff = atoi()
			if err == nil && (st.backoff < 0 || st.backoff > 64) {
				err = errors.New("out of range")
			}
		case "report_at":
			st.report.At = nsTime()
		case "report_pid":
			st.report.PID = atoi()
		case "report_host":
			st.report.Host = v
		case "report_hint":
			st.report.Hint = dur()
		case "report_kind":
			st.report.Kind = v
		case "report_reason":
			st.report.Reason = v
		case "report_command":
			st.report.Command = v
		case "report_label":
			st.report.Label = v
		default:
			// A key from a later version: ignored, as a reader of the
			// same major format may.
		}
		if err != nil {
			return nil, fmt.Errorf("bad %s=%q: %v", k, oneLine(v, 64), err)
		}
	}
	if !seenLimit {
		return nil, errors.New("no limit= line")
	}
	// A pause that ends further away than any report can set is a clock
	// gone wrong or a hand-edited file: cut it to the bound, never stuck.
	if limit := time.Now().Add(maxPause); st.pauseUntil.After(limit) {
		st.pauseUntil = limit
	}
	return st, nil
}

func (p *Pool) throttlePath() string { return filepath.Join(p.dir, throttleFileName) }

// loadThrottle reads the state: nil, nil when there is none; nil and an
// error describing it when the file is unusable (the caller logs it and
// goes on as if there were none).
func (p *Pool) loadThrottle() (*throttleState, error) {
	path := p.throttlePath()
	f, err := os.OpenFile(path, os.O_RDONLY|filelock.NoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("llmslots: %s is %s, which llmslots never makes; ignored (remove it, or run llmslots resume)", path, slotfile.Describe(fi))
		}
		return nil, fmt.Errorf("llmslots: cannot read %s: %w; ignored", path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("llmslots: %s is %s, which llmslots never makes; ignored (remove it, or run llmslots resume)", path, slotfile.Describe(fi))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxThrottleRead))
	if err != nil {
		return nil, fmt.Errorf("llmslots: cannot read %s: %w; ignored", path, err)
	}
	st, err := parseThrottle(data)
	if err != nil {
		return nil, fmt.Errorf("llmslots: the throttle state %s is not usable (%v); the pool goes on as if no report had been made, until the next report or `llmslots resume` replaces it", path, err)
	}
	return st, nil
}

// readThrottle is loadThrottle that logs an unusable file, once per pool
// until a usable one is read again.
func (p *Pool) readThrottle() *throttleState {
	st, err := p.loadThrottle()
	if err != nil {
		if !p.throttleBad.Swap(true) {
			p.log().Error("llmslots: throttle state ignored", "dir", p.dir, "err", err)
		}
		return nil
	}
	if st != nil {
		p.throttleBad.Store(false)
	}
	return st
}

// lockThrottle takes the exclusive lock that every change of the state,
// and every grant made while the state is restrictive, is made under. It
// is held for a few system calls; a process that holds it and stops
// (SIGSTOP) or keeps it for no reason holds up grants, never forever: the
// lock is tried, not waited for, for up to patience, and a caller on the
// grant path (grantPatience) treats a failure as "not now" and looks again.
// A report, Pause and Resume wait longer (changePatience): each happens
// once, after a failed call, and a report dropped because a holder of the
// lock was descheduled for 50 ms on a busy machine would leave every other
// process hammering the provider. Release's raise of the limit keeps the
// grants' patience: Release must not block, and a raise lost is harmless.
func (p *Pool) lockThrottle(patience time.Duration) (unlock func(), err error) {
	path := filepath.Join(p.dir, throttleLockName)
	f, err := os.OpenFile(path, os.O_RDWR|filelock.NoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = p.group.maker().Create(path)
		if errors.Is(err, fs.ErrExist) {
			f, err = os.OpenFile(path, os.O_RDWR|filelock.NoFollow, 0)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("llmslots: cannot open the throttle lock: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("llmslots: %s is not a regular file; remove it", path)
	}
	deadline := time.Now().Add(patience)
	for try := 0; ; try++ {
		ok, err := filelock.TryLock(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		if ok {
			return func() { f.Close() }, nil
		}
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, errThrottleBusy
		}
		time.Sleep(time.Duration(100<<min(try, 5)) * time.Microsecond)
	}
}

// How long lockThrottle tries the lock: on the grant path, and for a
// change of the state.
const (
	grantPatience  = 50 * time.Millisecond
	changePatience = 2 * time.Second
)

// errThrottleBusy: the throttle lock stayed taken; look again soon.
var errThrottleBusy = errors.New("llmslots: the throttle lock is held by another process")

// writeThrottle replaces the state file with st, atomically: readers see
// the old content or the new, never a part. Called under lockThrottle.
func (p *Pool) writeThrottle(st *throttleState) error {
	at := filepath.Join(p.dir, fmt.Sprintf("%sthrottle-%d-%016x", slotfile.NewbornPrefix, os.Getpid(), rand.Uint64()))
	f, err := p.group.maker().Create(at)
	if err != nil {
		return fmt.Errorf("llmslots: cannot write the throttle state: %w", err)
	}
	_, err = f.Write(st.marshal())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(at, p.throttlePath())
	}
	if err != nil {
		os.Remove(at)
		return fmt.Errorf("llmslots: cannot write the throttle state: %w", err)
	}
	return nil
}

// updateThrottle runs change on the state read afresh under the lock
// (nil: no usable state) and writes what it returns, if not nil.
func (p *Pool) updateThrottle(patience time.Duration, change func(st *throttleState) *throttleState) error {
	if err := p.prepare(); err != nil {
		return err
	}
	unlock, err := p.lockThrottle(patience)
	if err != nil {
		return err
	}
	defer unlock()
	st, lerr := p.loadThrottle()
	if lerr != nil {
		p.log().Error("llmslots: throttle state replaced", "dir", p.dir, "err", lerr)
		st = nil
	}
	if next := change(st); next != nil {
		return p.writeThrottle(next)
	}
	return nil
}

// Throttled reports that the work done under this slot was throttled by
// the provider (an HTTP 429, "rate limit exceeded", "usage limit reached,
// try again in ..."); retryAfter is the provider's hint of when to try
// again, 0 when it gave none. Call it where the 429 is seen, before or
// after Release.
//
// Every process of the pool is then slowed, host-wide, with no change to
// their code:
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
	acquired, max := g.acquired, g.max
	g.mu.Unlock()
	if retryAfter < 0 {
		retryAfter = 0
	}
	if max <= 0 {
		max = MaxSlots
	}
	p := g.pool
	p.throttleSeen.Store(true)
	err := p.updateThrottle(changePatience, func(st *throttleState) *throttleState {
		now := time.Now()
		if st == nil {
			st = &throttleState{limit: float64(max)}
		}
		st.limit = min(st.limit, float64(max))
		// One decrease per round: the work must have been granted after
		// the last decrease, else it is the same congestion reported again.
		sameRound := !acquired.After(st.decreased)
		if !sameRound {
			eff, failedBefore := st.effective(max), st.wmax
			st.wmax = eff
			if failedBefore > 1 && eff >= failedBefore {
				// A probe of the level that failed last time failed
				// again: the level below it is known good, so step back
				// to it rather than cut by decreaseFactor. At a steady
				// provider limit the pool then loses one level for one
				// round at each probe, not a third of its slots.
				st.limit = float64(failedBefore - 1)
			} else {
				st.limit = math.Max(1, st.limit*decreaseFactor)
			}
			st.decreased = now
		}
		pause := retryAfter
		if pause == 0 {
			if !sameRound || st.backoff == 0 {
				st.backoff = min(st.backoff+1, 64)
			}
			b := min(backoffCap, backoffBase<<min(st.backoff-1, 20))
			pause = b/2 + rand.N(b/2+1)
		}
		st.extendPause(now, pause)
		st.report = ThrottleReport{At: now, Hint: retryAfter, Kind: "throttled"}
		st.report.fillSelf(p)
		return st
	})
	if err != nil {
		p.log().Warn("llmslots: the throttle report was not recorded", "dir", p.dir, "err", err)
	}
}

// extendPause makes the pause last at least until now+d (never shortens
// one already on), and sets the ramp's spacing.
func (st *throttleState) extendPause(now time.Time, d time.Duration) {
	d = min(d, maxPause)
	if until := now.Add(d); until.After(st.pauseUntil) {
		st.pauseUntil = until
		st.spacing = min(maxSpacing, max(minSpacing, d/10))
		st.lastGrant = time.Time{}
	}
}

func (r *ThrottleReport) fillSelf(p *Pool) {
	me := slotfile.Self()
	r.PID, r.Host, r.Command, r.Label = me.PID, me.Host, me.Command, p.label
}

// Pause pauses the pool by hand for d: no process is granted a slot until
// d has passed (holders keep theirs, waiters keep their places); the limit
// is left as it is. reason is recorded for status readers. d must be
// positive and at most 24 h.
func (p *Pool) Pause(d time.Duration, reason string) error {
	if err := p.usable(); err != nil {
		return err
	}
	if d <= 0 || d > maxPause {
		return invalidf("pause must be > 0 and at most %v, got %v", maxPause, d)
	}
	if err := checkLabel(reason); err != nil {
		return invalidf("reason must be at most %d bytes of text without control characters", slotfile.MaxLabelLen)
	}
	return p.updateThrottle(changePatience, func(st *throttleState) *throttleState {
		now := time.Now()
		if st == nil {
			st = &throttleState{limit: MaxSlots}
		}
		// By hand, the pause is what the user says, even if shorter.
		st.pauseUntil = time.Time{}
		st.extendPause(now, d)
		st.report = ThrottleReport{At: now, Hint: d, Kind: "pause", Reason: reason}
		st.report.fillSelf(p)
		return st
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
	unlock, err := p.lockThrottle(changePatience)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(p.throttlePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("llmslots: %w", err)
	}
	p.throttleBad.Store(false)
	return nil
}

// guardThrottle is what a guard knows of the pool's throttling.
type guardThrottle struct {
	seen     bool      // the pool had a throttle state when the slot was granted
	reported bool      // Throttled was called
	decided  time.Time // when the grant was decided (tests judge by it)
	limit    int       // the effective limit the grant was decided under; 0: unrestricted
	holders  int       // the holders counted before the grant (gated grants)
}

// tryAcquireFast is the uncontended path's attempt (nobody waits): with
// no throttle state it is tryAcquire plus one failed lstat. The lstat
// comes after the take, so that a report written before it is always seen
// (a grant decided before the report was written is not the report's to
// stop). When the state could refuse this grant, the grant is decided
// again under the throttle lock (gateLocked): refused, the slot is given
// back and the caller waits in line (grant, re-check, back off). A pool
// known to have a state goes through the gate from the start.
func (p *Pool) tryAcquireFast(max int) (*Guard, error) {
	if p.throttleSeen.Load() {
		g, _, err := p.tryAcquireGated(max)
		return g, err
	}
	g, _, err := p.tryAcquire(max)
	if g == nil || err != nil {
		return g, err
	}
	return p.recheck(g, max), nil
}

// recheck decides whether g, a slot taken without the throttle lock, may
// be kept: with no state file (one failed lstat), or a state that cannot
// refuse it, yes; otherwise gateLocked decides again, and a refused slot
// is given back (nil). The decision is timed before the look, so a report
// written after that instant is one the grant could not see: it was
// decided first.
func (p *Pool) recheck(g *Guard, max int) *Guard {
	now := time.Now()
	if !p.throttleSeen.Load() {
		if _, err := os.Lstat(p.throttlePath()); err != nil {
			g.th.decided = now
			return g
		}
		p.throttleSeen.Store(true)
	}
	st := p.readThrottle()
	g.th.seen = st != nil
	if st == nil {
		p.throttleSeen.Store(false)
	}
	if !st.restrictive(max, now) {
		g.th.decided = now
		return g
	}
	if kept, _, err := p.gateLocked(max, g); err == nil && kept != nil {
		return g
	}
	g.giveBack()
	return nil
}

// giveBack undoes a grant the gate refused after the fact: the slot's
// name is removed under its lock, as Release does, but a spare stays with
// the acquire that took it (which goes on to wait in line with it).
func (g *Guard) giveBack() {
	g.mu.Lock()
	defer g.mu.Unlock()
	unregisterGuard(g)
	if g.file != nil {
		filelock.RemoveAndClose(g.file, g.path, g.info)
	}
	g.file = nil
}

// tryAcquireGated is tryAcquireSoon behind the throttle gate, for the
// waiting loop: when the state refuses a grant now, it takes nothing and
// calls earlier with when to look again (the pause's end, the ramp's next
// grant; a release wakes the waiter by itself).
//
// While the pool is not known to have a state, it reads none before the
// take: as tryAcquireFast does, it takes, then recheck looks at the flag
// (one fstat). Reading the state first cost a failed open of .throttle at
// every try of the head of the line.
func (p *Pool) tryAcquireGated(max int) (g *Guard, retry time.Time, err error) {
	now := time.Now()
	var st *throttleState
	seen := p.throttleSeen.Load()
	if seen {
		st = p.readThrottle()
		p.throttleSeen.Store(st != nil)
	}
	if !st.restrictive(max, now) {
		// Taken without the lock, then looked at again: a report may have
		// come between the read and the take.
		g, soon, err := p.tryAcquire(max)
		if soon {
			// No event comes when a young empty file grows old enough
			// to reclaim: look again then.
			retry = time.Now().Add(slotfile.FreshAge)
		}
		if g != nil {
			if g = p.recheck(g, max); g == nil && !seen {
				// A state came since the last look and the gate gave
				// the slot back: look again at once, through the gate.
				retry = time.Now()
			}
		}
		return g, retry, err
	}
	if now.Before(st.pauseUntil) {
		return nil, st.pauseUntil, nil // no event marks a pause's end
	}
	g, retry, err = p.gateLocked(max, nil)
	if errors.Is(err, errThrottleBusy) {
		return nil, time.Now().Add(10 * time.Millisecond), nil
	}
	return g, retry, err
}

// gateLocked decides a grant under the throttle lock, counting the slots
// held now: no grant while a pause is on, while the ramp after it spaces
// grants, or while the holders already reach the effective limit. With
// have nil it takes the slot itself (with spare s), still under the lock;
// with have set (a slot the fast path took without the lock) it decides
// whether that one may be kept, counting it out, and returns it or nil.
//
// Why a lock, and not grant-then-check alone: two processes that both
// count L-1 holders and both take a slot would make L+1; both checking
// after taking could both give back, or both keep. Under the lock the
// count and the take are one step for everyone who goes through the gate.
// A process that took a slot without the lock (its lstat found no state,
// an instant before the first report was written) decided before the
// report existed; from then on every grant goes through here. The lock is
// held for a count of the slots (an lstat and, for an existing file, a
// lock probe each) and one take: tens of microseconds.
func (p *Pool) gateLocked(max int, have *Guard) (g *Guard, retry time.Time, err error) {
	unlock, err := p.lockThrottle(grantPatience)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer unlock()
	now := time.Now()
	st := p.readThrottle()
	limit := st.effective(max)
	if st != nil {
		if now.Before(st.pauseUntil) {
			return nil, st.pauseUntil, nil
		}
		if now.Before(st.rampEnd(max)) && !st.lastGrant.IsZero() && now.Sub(st.lastGrant) < st.spacing {
			return nil, st.lastGrant.Add(st.spacing), nil
		}
	}
	holders := p.countHolders(max, have)
	if holders >= limit {
		return nil, time.Time{}, nil // a release wakes the waiter
	}
	// The decision's instant, for the record: after the count, before the
	// take, inside the lock (no report can come between).
	decided := time.Now()
	g = have
	if g == nil {
		g, _, err = p.tryAcquire(max)
		if g == nil || err != nil {
			return nil, time.Time{}, err
		}
	}
	g.th = guardThrottle{seen: st != nil, decided: decided, limit: limit, holders: holders}
	if st != nil && now.Before(st.rampEnd(max)) {
		st.lastGrant = now
		if err := p.writeThrottle(st); err != nil {
			p.log().Warn("llmslots: throttle ramp not recorded", "dir", p.dir, "err", err)
		}
	}
	return g, time.Time{}, nil
}

// countHolders counts the slots below max held now: this process's own
// (but not except), and any other whose lock is taken.
func (p *Pool) countHolders(max int, except *Guard) int {
	n := 0
	for id := range max {
		path := slotfile.SlotPath(p.dir, id)
		if except != nil && except.path == path {
			continue
		}
		if heldHere(path) {
			n++
			continue
		}
		if _, err := os.Lstat(path); err != nil {
			continue
		}
		if res, err := slotfile.Probe(path, slotfile.Look); err == nil && res.State == slotfile.Held {
			n++
		}
	}
	return n
}

// afterRelease raises the limit for work that was not throttled (the
// additive increase), and ends the no-hint backoff: called by Release of
// a guard granted while the pool had a throttle state. A guard granted
// with none costs nothing here: one that saw no state has nothing to
// raise.
func (g *Guard) afterRelease() {
	if !g.th.seen || g.th.reported || g.nested() {
		return
	}
	p, max := g.pool, g.max
	if max <= 0 {
		return
	}
	st := p.readThrottle()
	if st == nil || st.limit >= float64(max) && st.backoff == 0 {
		return
	}
	err := p.updateThrottle(grantPatience, func(st *throttleState) *throttleState {
		if st == nil || st.limit >= float64(max) && st.backoff == 0 {
			return nil
		}
		st.backoff = 0
		if st.limit < float64(max) {
			step := 1 / st.limit
			if int(math.Floor(st.limit+1e-9)) == st.wmax-1 {
				step /= slowRounds
			}
			st.limit = math.Min(float64(max), st.limit+step)
			if st.limit >= float64(st.wmax+1) {
				st.wmax = 0 // past the level that failed: it is forgotten
			}
		}
		return st
	})
	if err != nil && !errors.Is(err, errThrottleBusy) {
		p.log().Warn("llmslots: throttle state not updated at release", "dir", p.dir, "err", err)
	}
}

// throttleStatus is the state as Status and Progress show it; nil when
// the pool has no throttle state.
func (p *Pool) throttleStatus(max int) *ThrottleStatus {
	st, err := p.loadThrottle()
	if err != nil {
		return &ThrottleStatus{Limit: max, Error: err.Error()}
	}
	if st == nil {
		return nil
	}
	ts := &ThrottleStatus{Limit: st.effective(max), RawLimit: st.limit}
	if time.Now().Before(st.pauseUntil) {
		ts.PausedUntil, ts.Spacing = st.pauseUntil, st.spacing
	}
	if !st.report.At.IsZero() {
		r := st.report
		ts.LastReport = &r
	}
	return ts
}
