//go:build unix

package llmslots

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The reference implementation (llm_slots.rs) and this library share the
// slot files' names, the create-exclusive + flock protocol and the
// "pid=N" first line, so processes of both may share one directory. The
// helpers of mode ref-cycle and ref-hold (chaos_helpers_test.go) follow
// the reference step by step: they never look at an existing file and
// never reclaim one; only the library does.

// Reference-protocol processes and library processes cycle together on a
// pool of 2; their own logs must never show more than 2 holders, or one
// slot twice. In the second variant reference holders are SIGKILLed while
// holding: their files stay behind (the reference never reclaims), the
// library must reclaim them, and the pool must end with nothing leaked.
func TestInteropWithReferenceNeverExceedsMax(t *testing.T) {
	for _, killRef := range []bool{false, true} {
		name := "cycling"
		if killRef {
			name = "reference_holders_killed"
		}
		t.Run(name, func(t *testing.T) {
			interopRun(t, killRef)
		})
	}
}

func interopRun(t *testing.T, killRef bool) {
	const perSide, limit = 4, 2
	const runFor = 2 * time.Second
	// Reference processes poll every 100 ms and lose most races to the
	// library's queue, whose head is woken by each release: give them
	// fewer cycles.
	cycles := map[string]int{"ref-cycle": 8, "chaos": 15}
	p := newTestPool(t)

	ends := make(chan procEnd, 2*perSide)
	var live []*loggedProc
	mode := map[*loggedProc]string{}
	t.Cleanup(func() {
		for _, lp := range live {
			lp.cmd.Process.Kill()
		}
		for range live {
			<-ends
		}
	})
	start := func(m string) {
		lp, err := startLogged(t, ends, m, p.Dir(), limit, "HELPER_CYCLES="+strconv.Itoa(cycles[m]),
			"HELPER_HOLD_MS=20", "HELPER_THINK_MS=30", "HELPER_WAITS=long")
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, lp)
		mode[lp] = m
	}
	for range perSide {
		start("ref-cycle")
		start("chaos")
	}

	var intervals []holdInterval
	acquired := map[string]int{}
	var refKills, refBusy int
	var failures []string
	account := func(e procEnd) {
		live = slices.DeleteFunc(live, func(lp *loggedProc) bool { return lp == e.proc })
		m, l := mode[e.proc], e.log
		intervals = append(intervals, l.intervals...)
		acquired[m] += l.acquired
		refBusy += l.busy["ref"]
		for _, msg := range l.errs {
			failures = append(failures, fmt.Sprintf("%s helper %d: %s", m, e.proc.pid, msg))
		}
		switch {
		case e.killed():
			refKills++
			if l.open != nil {
				iv := *l.open
				iv.end = max(e.proc.killedAt.Load(), iv.start)
				intervals = append(intervals, iv)
			}
		case e.waitErr != nil || !l.done || l.cycles != cycles[m] || l.open != nil:
			failures = append(failures, fmt.Sprintf("%s helper %d ended with %v after %d acquisitions (done=%v)",
				m, e.proc.pid, e.waitErr, l.acquired, l.done))
		}
	}

	// Kill a reference process that holds a slot every 20-80 ms, and
	// start another in its place, for runFor; then let everyone finish.
	killer := time.NewTicker(time.Hour)
	if killRef {
		killer.Reset(20*time.Millisecond + randMs(60))
	}
	defer killer.Stop()
	stop := time.After(runFor)
	drain := time.After(runFor + 40*time.Second)
	running := killRef
	for len(live) > 0 {
		select {
		case e := <-ends:
			account(e)
			refsLeft := slices.ContainsFunc(live, func(lp *loggedProc) bool { return mode[lp] == "ref-cycle" })
			switch {
			case running && e.killed():
				start(mode[e.proc])
			case mode[e.proc] == "chaos" && refsLeft:
				// Reference processes never reclaim a dead holder's
				// file: keep a library process around to do it.
				start("chaos")
			}
		case <-killer.C:
			if !running {
				continue
			}
			var holders []*loggedProc
			for _, lp := range live {
				if mode[lp] == "ref-cycle" && lp.holding.Load() && lp.killedAt.Load() == 0 {
					holders = append(holders, lp)
				}
			}
			if len(holders) > 0 {
				holders[rand.IntN(len(holders))].kill()
			}
			killer.Reset(20*time.Millisecond + randMs(60))
		case <-stop:
			running = false
		case <-drain:
			var left []string
			for _, lp := range live {
				left = append(left, fmt.Sprintf("%s %d", mode[lp], lp.pid))
			}
			t.Fatalf("%d helpers still running after %v: %v", len(live), runFor+40*time.Second, left)
		}
	}

	violations, peak := checkIntervals(intervals, limit)
	var leaks int
	for i := range limit {
		g, err := p.Acquire(limit, 2*time.Second)
		if err != nil {
			leaks++
			failures = append(failures, fmt.Sprintf("afterwards, acquire %d of %d: %v", i+1, limit, err))
			continue
		}
		defer g.Release()
	}
	summary := fmt.Sprintf("interop (%s): %d reference-protocol acquisitions, %d library acquisitions, %d reference holders SIGKILLed, "+
		"%d reference waits ran out; peak %d holders on max %d; violations %d, leaks %d",
		t.Name(), acquired["ref-cycle"], acquired["chaos"], refKills, refBusy, peak, limit, len(violations), leaks)
	t.Log(summary)
	fmt.Println(summary)
	for _, v := range violations[:min(len(violations), 10)] {
		t.Error("violation " + v)
	}
	for _, f := range failures {
		t.Error(f)
	}
	if acquired["ref-cycle"] == 0 || acquired["chaos"] == 0 || killRef && refKills == 0 {
		t.Errorf("the run did not mix both sides (or kill any reference holder): it tested nothing")
	}
}

// refHolder is a ref-hold helper: it takes one slot with the reference
// protocol and holds it until its stdin closes.
func startRefHolder(t *testing.T, dir string, max int, env ...string) (*helper, int) {
	t.Helper()
	h := startHelper(t, "ref-hold", dir, max, env...)
	l := h.line()
	id, err := strconv.Atoi(strings.TrimPrefix(l, "held "))
	if !strings.HasPrefix(l, "held ") || err != nil {
		t.Fatalf("reference holder %d: want \"held N\", got %q", h.pid(), l)
	}
	return h, id
}

// Status judges a reference holder by its lock and its "pid=" line: held
// with its pid while it lives, stale with its pid once SIGKILLed; the
// library reclaims the stale file at once, and a library waiter is woken
// by the holder's death without polling.
func TestInteropStatusAndReclaimOfReferenceHolders(t *testing.T) {
	var logs strings.Builder
	p := newTestPool(t, WithLogger(debugLogger(&logs)))
	a, idA := startRefHolder(t, p.Dir(), 2)
	b, idB := startRefHolder(t, p.Dir(), 2)
	if idA != 0 || idB != 1 {
		t.Fatalf("reference holders took slots %d and %d; want 0 and 1", idA, idB)
	}
	st, err := p.ReadStatus(2)
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != 2 || st.Free != 0 || st.Slots[0].State != StateHeld || st.Slots[0].PID != a.pid() ||
		st.Slots[1].State != StateHeld || st.Slots[1].PID != b.pid() {
		t.Fatalf("status with two reference holders: %+v", st)
	}

	// A library waiter behind two reference holders; SIGKILL one of them.
	got := make(chan *Guard, 1)
	go func() {
		g, err := p.Acquire(2, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- g
	}()
	waitForWaiters(t, p, 2, 1)
	killed := time.Now()
	a.kill()
	g := <-got
	if g == nil {
		t.FailNow()
	}
	took := time.Since(killed)
	t.Logf("a library waiter took the slot of a SIGKILLed reference holder %v after the kill", took)
	if g.SlotID() != 0 {
		t.Fatalf("waiter took slot %d; want the dead reference holder's slot 0", g.SlotID())
	}
	if !strings.Contains(logs.String(), "dead_pid="+strconv.Itoa(a.pid())) {
		t.Errorf("no debug log names the dead reference holder %d:\n%s", a.pid(), logs.String())
	}
	st, _ = p.ReadStatus(2)
	if st.Slots[0].State != StateHeld || st.Slots[0].PID != os.Getpid() || st.Slots[1].PID != b.pid() {
		t.Fatalf("status after the reclaim: %+v", st)
	}
	g.Release()

	// Killed with nobody waiting, its file stays: stale, with its pid.
	b.kill()
	st, _ = p.ReadStatus(2)
	if st.Slots[1].State != StateStale || st.Slots[1].PID != b.pid() || st.Stale != 1 || st.Free != 2 {
		t.Fatalf("status after SIGKILL of the reference holder of slot 1: %+v", st)
	}
	if stale, err := p.FindStale(2); err != nil || !slices.Equal(stale, []int{1}) {
		t.Fatalf("FindStale: %v %v; want [1]", stale, err)
	}
	// A reference process cannot use that slot (its create fails) ...
	c, idC := startRefHolder(t, p.Dir(), 2)
	if idC != 0 {
		t.Fatalf("a new reference holder took slot %d; want 0, since it cannot reclaim slot 1", idC)
	}
	// ... but the library reclaims it.
	g = mustAcquire(t, p, 2, 0)
	if g.SlotID() != 1 {
		t.Fatalf("library took slot %d; want the stale slot 1", g.SlotID())
	}
	g.Release()
	c.stdin.Close()
	if l := c.line(); l != "released" {
		t.Fatalf("reference holder said %q", l)
	}
	if st, _ := p.ReadStatus(2); st.Active != 0 || st.Stale != 0 {
		t.Fatalf("status at the end: %+v", st)
	}
}
