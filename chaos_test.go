//go:build unix

package llmslots

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// holdInterval is one time a process held a slot, as its own log says,
// in CLOCK_MONOTONIC nanoseconds. It lies inside the true holding period:
// start is read after Acquire returned, end before Release was called (or
// before the SIGKILL that ended the holder was sent).
type holdInterval struct {
	slot       int
	start, end int64
	pid        int
	ino        string
	killed     bool
}

// procLog is what one helper process wrote before its output ended.
type procLog struct {
	intervals []holdInterval
	open      *holdInterval // acquired, not yet released
	waiting   bool          // a "try" without its outcome
	acquired  int
	busy      map[string]int // by kind of wait
	cancelled int
	errs      []string
	done      bool
	cycles    int
}

// readProcLog parses a helper's output (see chaos_helpers_test.go) until
// it ends, keeping holding (if not nil) set while the helper holds a slot.
func readProcLog(r io.Reader, pid int, holding *atomic.Bool) procLog {
	l := procLog{busy: map[string]int{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			l.errs = append(l.errs, "empty line")
			continue
		}
		switch f[0] {
		case "try":
			l.waiting = true
		case "acq", "rel":
			if len(f) != 3 {
				l.errs = append(l.errs, "bad line "+strconv.Quote(line))
				continue
			}
			slot, err1 := strconv.Atoi(f[1])
			at, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				l.errs = append(l.errs, "bad line "+strconv.Quote(line))
				continue
			}
			if f[0] == "acq" {
				if l.open != nil {
					l.errs = append(l.errs, "acq while holding: "+line)
				}
				l.waiting = false
				l.acquired++
				l.open = &holdInterval{slot: slot, start: at, pid: pid}
				if holding != nil {
					holding.Store(true)
				}
				continue
			}
			if l.open == nil || l.open.slot != slot || at < l.open.start {
				l.errs = append(l.errs, "rel without its acq: "+line)
				continue
			}
			if holding != nil {
				holding.Store(false)
			}
			l.open.end = at
			l.intervals = append(l.intervals, *l.open)
			l.open = nil
		case "ino":
			if l.open != nil {
				l.open.ino = strings.Join(f[1:], "/")
			}
		case "busy":
			l.waiting = false
			l.busy[strings.Join(f[1:], " ")]++
		case "cancelled":
			l.waiting = false
			l.cancelled++
		case "done":
			l.done = true
			l.cycles, _ = strconv.Atoi(f[len(f)-1])
		default:
			l.errs = append(l.errs, line)
		}
	}
	if err := sc.Err(); err != nil {
		l.errs = append(l.errs, "reading output: "+err.Error())
	}
	return l
}

// checkIntervals sweeps the intervals in time order and describes every
// moment at which more than limit of them, or two on one slot, overlap.
// Intervals that touch (one ends when the other starts) do not overlap.
func checkIntervals(ivs []holdInterval, limit int) (violations []string, peak int) {
	type event struct {
		at    int64
		delta int
		iv    holdInterval
	}
	events := make([]event, 0, 2*len(ivs))
	for _, iv := range ivs {
		if iv.end <= iv.start {
			// Sorted ends first, its end would come before its own start
			// and leave it holding for ever (see the killed holders'
			// intervals in TestChaos).
			iv.end = iv.start + 1
		}
		events = append(events, event{iv.start, +1, iv}, event{iv.end, -1, iv})
	}
	sort.Slice(events, func(i, j int) bool {
		if events[i].at != events[j].at {
			return events[i].at < events[j].at
		}
		return events[i].delta < events[j].delta // ends first at a tie
	})
	holders := map[holdInterval]bool{}
	bySlot := map[int]int{}
	for _, e := range events {
		if e.delta < 0 {
			delete(holders, e.iv)
			bySlot[e.iv.slot]--
			continue
		}
		holders[e.iv] = true
		bySlot[e.iv.slot]++
		peak = max(peak, len(holders))
		if len(holders) > limit || bySlot[e.iv.slot] > 1 {
			var who []string
			for h := range holders {
				who = append(who, fmt.Sprintf("pid %d slot %d [%d, %d] ino %s killed %v", h.pid, h.slot, h.start, h.end, h.ino, h.killed))
			}
			sort.Strings(who)
			violations = append(violations, fmt.Sprintf("at %d: %d holders (max %d), slot %d held %d times: %s",
				e.at, len(holders), limit, e.iv.slot, bySlot[e.iv.slot], strings.Join(who, "; ")))
		}
	}
	return violations, peak
}

// loggedProc is a helper process whose log is read as it runs.
type loggedProc struct {
	cmd      *exec.Cmd
	pid      int
	killedAt atomic.Int64 // CLOCK_MONOTONIC just before SIGKILL was sent; 0 if never
	holding  atomic.Bool  // its log shows it holding a slot now
}

// procEnd is how a loggedProc ended.
type procEnd struct {
	proc    *loggedProc
	log     procLog
	waitErr error
}

// killed reports whether the process died of the SIGKILL the test sent.
func (e procEnd) killed() bool {
	var ee *exec.ExitError
	if e.proc.killedAt.Load() == 0 || !errors.As(e.waitErr, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// startLogged starts a helper in mode on dir; its log and exit arrive on
// ends once its output is closed. The process is SIGKILLed at the end of
// the test if still running.
func startLogged(t *testing.T, ends chan<- procEnd, mode, dir string, max int, env ...string) (*loggedProc, error) {
	cmd := helperCmd(os.Args[0], mode, dir, max, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &loggedProc{cmd: cmd, pid: cmd.Process.Pid}
	go func() {
		l := readProcLog(out, p.pid, &p.holding)
		ends <- procEnd{proc: p, log: l, waitErr: cmd.Wait()}
	}()
	return p, nil
}

// kill sends SIGKILL, noting the time just before. It reports false if the
// process had already been reaped, or killed: a second kill must not move
// the time of the first, since a dead process that is not yet reaped
// still takes signals, and its slot may have been taken again since.
func (p *loggedProc) kill() bool {
	if !p.killedAt.CompareAndSwap(0, monotonic()) {
		return false
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.killedAt.Store(0)
		return false
	}
	return true
}

// chaosDuration is how long the chaos test runs: LLMSLOTS_CHAOS if set
// (a Go duration such as 20s or 5m), else 5 s.
func chaosDuration(t *testing.T) time.Duration {
	v := os.Getenv("LLMSLOTS_CHAOS")
	if v == "" {
		return 5 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("LLMSLOTS_CHAOS=%q: want a positive duration such as 20s or 5m", v)
	}
	return d
}

// chaosCounts are the figures of a chaos run.
type chaosCounts struct {
	started, finished                    int
	killedHolders, killedWaiters, killed int // killed counts all three kinds
	acquisitions, cancelled              int
	busy                                 map[string]int
	violations, leaks                    int
	peak                                 int
}

// TestChaos: a dozen processes cycle through a pool of 3 with random holds
// and random ways of waiting (long waits, short timeouts, cancelled and
// timed-out contexts, single attempts) while a killer SIGKILLs one of them
// every 10-60 ms, holder or waiter alike, and a replacement starts. From
// the processes' own logs: never more than 3 holders at once, never one
// slot twice; every process not killed finished its cycles; nobody saw an
// error but a busy pool or an ended context. Afterwards one acquirer takes
// all 3 slots at once (nothing leaked) and the queue is empty.
//
// It runs 5 s; LLMSLOTS_CHAOS=20s (or 5m) runs it longer.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test skipped in -short mode")
	}
	const procs, limit, cycles = 12, 3, 12
	dur := chaosDuration(t)
	p := newTestPool(t)

	ends := make(chan procEnd, procs)
	var live []*loggedProc
	t.Cleanup(func() {
		for _, lp := range live {
			lp.cmd.Process.Kill()
		}
		for range live {
			<-ends
		}
	})
	c := chaosCounts{busy: map[string]int{}}
	start := func() {
		env := []string{"HELPER_CYCLES=" + strconv.Itoa(cycles)}
		lp, err := startLogged(t, ends, "chaos", p.Dir(), limit, env...)
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, lp)
		c.started++
	}
	var intervals []holdInterval
	var failures []string
	account := func(e procEnd) {
		live = slices.DeleteFunc(live, func(lp *loggedProc) bool { return lp == e.proc })
		l := e.log
		intervals = append(intervals, l.intervals...)
		c.acquisitions += l.acquired
		c.cancelled += l.cancelled
		for k, n := range l.busy {
			c.busy[k] += n
		}
		for _, msg := range l.errs {
			failures = append(failures, fmt.Sprintf("helper %d: %s", e.proc.pid, msg))
		}
		switch {
		case e.killed():
			c.killed++
			switch {
			case l.open != nil:
				c.killedHolders++
				// The kernel dropped the lock after the kill was sent;
				// the process held the slot at least until then, and
				// past the moment it logged acq (it wrote the line after
				// reading the clock: so at least 1 ns more).
				iv := *l.open
				iv.end = max(e.proc.killedAt.Load(), iv.start+1)
				iv.killed = true
				intervals = append(intervals, iv)
			case l.waiting:
				c.killedWaiters++
			}
		case e.waitErr == nil && l.done && l.cycles == cycles && l.open == nil:
			c.finished++
		default:
			failures = append(failures, fmt.Sprintf("helper %d was not killed but ended with %v after %d acquisitions (done=%v)",
				e.proc.pid, e.waitErr, l.acquired, l.done))
		}
	}

	// A status reader and a cleanup, as `llmslots status` and `llmslots
	// cleanup` would run while all this goes on.
	var probes atomic.Int64
	{
		probing := make(chan struct{})
		probed := make(chan struct{})
		go func() {
			defer close(probed)
			for n := 0; ; n++ {
				select {
				case <-probing:
					return
				case <-time.After(randMs(5)):
				}
				if n%10 == 9 {
					p.RemoveDeadWaiters()
				} else if _, err := p.ReadStatus(limit); err != nil {
					t.Errorf("ReadStatus during the chaos: %v", err)
				}
				probes.Add(1)
			}
		}()
		defer func() { close(probing); <-probed }()
	}

	began := time.Now()
	for range procs {
		start()
	}
	killer := time.NewTimer(randMs(50) + 10*time.Millisecond)
	defer killer.Stop()
	stop := time.After(dur)
	var drain <-chan time.Time
	running := true
	for running || len(live) > 0 {
		select {
		case e := <-ends:
			account(e)
			if running {
				start()
			}
		case <-killer.C:
			var alive []*loggedProc
			for _, lp := range live {
				if lp.killedAt.Load() == 0 {
					alive = append(alive, lp)
				}
			}
			if running && len(alive) > 0 {
				alive[rand.IntN(len(alive))].kill()
			}
			killer.Reset(randMs(50) + 10*time.Millisecond)
		case <-stop:
			// No more kills or replacements; the others finish their
			// cycles, which takes well under a second when nothing hangs.
			running = false
			drain = time.After(8 * time.Second)
		case <-drain:
			t.Fatalf("%d helpers still running 8 s after the end (a hang?): pids %v", len(live), pids(live))
		}
	}
	elapsed := time.Since(began)
	if n := probes.Load(); n > 0 {
		t.Logf("%d status reads and cleanups ran during the chaos", n)
	}

	violations, peak := checkIntervals(intervals, limit)
	c.violations, c.peak = len(violations), peak

	// Nothing leaked: with every helper gone, one acquirer takes all the
	// slots, each within 2 s.
	var guards []*Guard
	for i := range limit {
		t0 := time.Now()
		g, err := p.Acquire(limit, 2*time.Second)
		if err != nil {
			c.leaks++
			failures = append(failures, fmt.Sprintf("afterwards, acquire %d of %d: %v", i+1, limit, err))
			continue
		}
		if took := time.Since(t0); took > 500*time.Millisecond {
			t.Logf("afterwards, slot %d took %v to take", g.SlotID(), took)
		}
		guards = append(guards, g)
	}
	// A waiter given a slot leaves the line just after Acquire returns
	// (see waitInLine): let those departures finish before looking.
	for _, g := range guards {
		if g.left != nil {
			<-g.left
		}
	}
	st, err := p.ReadStatus(limit)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Waiting) != 0 || st.Active != len(guards) {
		failures = append(failures, fmt.Sprintf("afterwards, status: %d active (want %d), waiting %+v", st.Active, len(guards), st.Waiting))
	}
	for _, g := range guards {
		if err := g.Release(); err != nil {
			t.Error(err)
		}
	}
	deadWaiters, err := p.RemoveDeadWaiters()
	if err != nil {
		t.Fatal(err)
	}
	if files := queueFiles(t, p); len(files) != 0 {
		failures = append(failures, fmt.Sprintf("afterwards, the queue holds %v", files))
	}
	path := "one waiting path: lock waits"
	summary := fmt.Sprintf("chaos (%s): %v on max %d, %d processes at a time: %d started, %d finished their %d cycles, "+
		"%d SIGKILLed (%d holding a slot, %d waiting, %d between); %d acquisitions, peak %d holders; "+
		"waits ended: busy %v, cancelled %d; %d dead tickets left by killed waiters; violations %d, leaks %d; %v in all",
		path, dur, limit, procs, c.started, c.finished, cycles,
		c.killed, c.killedHolders, c.killedWaiters, c.killed-c.killedHolders-c.killedWaiters,
		c.acquisitions, c.peak, c.busy, c.cancelled, len(deadWaiters), c.violations, c.leaks, elapsed.Round(time.Millisecond))
	t.Log(summary)
	fmt.Println(summary)

	for _, v := range violations[:min(len(violations), 10)] {
		t.Error("violation " + v)
	}
	for _, f := range failures[:min(len(failures), 20)] {
		t.Error(f)
	}
	if len(failures) > 20 {
		t.Errorf("... and %d more failures", len(failures)-20)
	}
	if c.killedHolders == 0 || c.killedWaiters == 0 || c.acquisitions == 0 {
		t.Errorf("the run killed %d holders and %d waiters in %d acquisitions: it tested nothing", c.killedHolders, c.killedWaiters, c.acquisitions)
	}
}

func pids(ps []*loggedProc) []int {
	var out []int
	for _, p := range ps {
		out = append(out, p.pid)
	}
	return out
}

// The sweep itself must see what it is meant to: too many holders, one
// slot twice, and intervals that only touch as no overlap.
func TestCheckIntervalsFindsOverlaps(t *testing.T) {
	for _, tc := range []struct {
		name string
		ivs  []holdInterval
		want int
	}{
		{"touching", []holdInterval{{slot: 0, start: 10, end: 20, pid: 1}, {slot: 0, start: 20, end: 30, pid: 2}, {slot: 1, start: 5, end: 30, pid: 3}}, 0},
		{"one slot twice", []holdInterval{{slot: 0, start: 10, end: 20, pid: 1}, {slot: 0, start: 19, end: 30, pid: 2}}, 1},
		{"three holders", []holdInterval{{slot: 0, start: 10, end: 20, pid: 1}, {slot: 1, start: 11, end: 30, pid: 2}, {slot: 2, start: 12, end: 13, pid: 3}}, 1},
		// A zero-length interval counts for 1 ns, and leaves no phantom
		// holder after it.
		{"zero length", []holdInterval{{slot: 0, start: 10, end: 10, pid: 1}, {slot: 0, start: 11, end: 20, pid: 2}, {slot: 1, start: 12, end: 20, pid: 3}}, 0},
		{"zero length overlapped", []holdInterval{{slot: 0, start: 10, end: 10, pid: 1}, {slot: 0, start: 5, end: 20, pid: 2}}, 1},
	} {
		violations, _ := checkIntervals(tc.ivs, 2)
		if len(violations) != tc.want {
			t.Errorf("%s: %d violations %q; want %d", tc.name, len(violations), violations, tc.want)
		}
	}
}
