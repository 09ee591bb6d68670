//go:build unix

package llmslots

import (
	"bufio"
	"fmt"

	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func init() {
	helperModes["throttle"] = throttleHelper
}

// throttleHelper loops: take a slot (waiting up to 5 s), hold it 0-40 ms,
// and one time in five report the work throttled with a hint of 20-80 ms,
// then release. Times are wall-clock nanoseconds, which every process
// shares. It logs, one write per line:
//
//	acq <slot> <decided> <limit> <holders>   a grant: when it was decided,
//	                                         under which effective limit (0:
//	                                         ungated) and how many holders
//	                                         the gate counted
//	rep <before> <after> <hint>              a report, timed around Throttled
//	rel <slot> <ns>                          about to release
func throttleHelper() int {
	p, max, ok := helperPool("throttle")
	if !ok {
		return 1
	}
	cycles := envInt("HELPER_CYCLES", 1000)
	for range cycles {
		time.Sleep(randMs(5))
		g, err := p.Acquire(max, 5*time.Second)
		if err != nil {
			emit("busy %v", err)
			continue
		}
		emit("acq %d %d %d %d", g.SlotID(), g.th.decided.UnixNano(), g.th.limit, g.th.holders)
		time.Sleep(randMs(40))
		if rand.IntN(5) == 0 {
			hint := time.Duration(20+rand.IntN(61)) * time.Millisecond
			before := time.Now().UnixNano()
			g.Throttled(hint)
			emit("rep %d %d %d", before, time.Now().UnixNano(), int64(hint))
		}
		emit("rel %d %d", g.SlotID(), time.Now().UnixNano())
		if err := g.Release(); err != nil {
			emit("error %v", err)
			return 1
		}
	}
	return 0
}

type thGrant struct {
	proc, slot      int
	decided, end    int64
	limit, holders  int
	released, ended bool
}

type thReport struct{ before, after, hint int64 }

// TestThrottleChaos runs workers that report throttling at random while
// others are SIGKILLed at random, and judges from the workers' own logs:
// never more than max holders; no grant decided while a pause was on; no
// gated grant while the holders already reached the effective limit.
func TestThrottleChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos takes a few seconds")
	}
	const workers, maxSlots = 8, 4
	length := 6 * time.Second
	dir := t.TempDir()
	var mu sync.Mutex
	var grants []*thGrant
	var reports []thReport
	var wg sync.WaitGroup
	procs := 0
	killedAt := map[*exec.Cmd]int64{} // under mu
	start := func() (*exec.Cmd, error) {
		cmd := helperCmd(os.Args[0], "throttle", dir, maxSlots)
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		mu.Lock()
		proc := procs
		procs++
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			var open *thGrant
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				n := func(i int) int64 {
					v, _ := strconv.ParseInt(f[i], 10, 64)
					return v
				}
				mu.Lock()
				switch {
				case len(f) == 5 && f[0] == "acq":
					open = &thGrant{proc: proc, slot: int(n(1)), decided: n(2), limit: int(n(3)), holders: int(n(4))}
					grants = append(grants, open)
				case len(f) == 4 && f[0] == "rep":
					reports = append(reports, thReport{n(1), n(2), n(3)})
				case len(f) == 3 && f[0] == "rel" && open != nil:
					open.end, open.released, open.ended = n(2), true, true
					open = nil
				case f[0] == "error":
					t.Errorf("worker: %s", sc.Text())
				}
				mu.Unlock()
			}
			cmd.Wait()
			mu.Lock()
			if open != nil && killedAt[cmd] > 0 {
				// Killed while holding: its lock went with it, an instant
				// after the signal was sent.
				open.end, open.ended = killedAt[cmd], true
			}
			mu.Unlock()
		}()
		return cmd, nil
	}
	cmds := make([]*exec.Cmd, workers)
	for i := range cmds {
		c, err := start()
		if err != nil {
			t.Fatal(err)
		}
		cmds[i] = c
	}
	kills := 0
	for deadline := time.Now().Add(length); time.Now().Before(deadline); {
		time.Sleep(randMs(300))
		i := rand.IntN(workers)
		mu.Lock()
		killedAt[cmds[i]] = time.Now().UnixNano()
		mu.Unlock()
		cmds[i].Process.Signal(syscall.SIGKILL)
		kills++
		c, err := start()
		if err != nil {
			t.Fatal(err)
		}
		cmds[i] = c
	}
	for _, c := range cmds {
		mu.Lock()
		killedAt[c] = time.Now().UnixNano()
		mu.Unlock()
		c.Process.Signal(syscall.SIGKILL)
	}
	wg.Wait()

	// Never more than max holders: sweep the intervals.
	type ev struct {
		at int64
		d  int
	}
	var evs []ev
	for _, g := range grants {
		if g.ended {
			evs = append(evs, ev{g.decided, +1}, ev{g.end, -1})
		}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].at < evs[j].at || evs[i].at == evs[j].at && evs[i].d < evs[j].d })
	peak, cur := 0, 0
	for _, e := range evs {
		cur += e.d
		peak = max(peak, cur)
	}
	if peak > maxSlots {
		t.Errorf("%d holders at once, max %d", peak, maxSlots)
	}
	gated, paused := 0, 0
	for _, g := range grants {
		// No grant decided while a pause was on: a report written (its
		// Throttled returned) before the decision, whose pause (at least
		// its hint from before it was called) had not ended.
		for _, r := range reports {
			if g.decided > r.after && g.decided < r.before+r.hint {
				t.Errorf("grant to worker %d decided %v after a report, inside its %v pause",
					g.proc, time.Duration(g.decided-r.after), time.Duration(r.hint))
				paused++
			}
		}
		if g.limit == 0 {
			continue
		}
		gated++
		if g.limit > maxSlots || g.holders >= g.limit {
			t.Errorf("gated grant with limit %d, %d holders counted", g.limit, g.holders)
		}
		// The holders the logs show at the decision: each held its slot at
		// least from its own decision to its release line.
		seen := 0
		var who []string
		for _, h := range grants {
			if h != g && h.decided < g.decided && h.ended && h.end > g.decided {
				seen++
				who = append(who, fmt.Sprintf("worker %d slot %d from %v before to %v after (limit %d)", h.proc, h.slot,
					time.Duration(g.decided-h.decided), time.Duration(h.end-g.decided), h.limit))
			}
		}
		if seen >= g.limit {
			t.Errorf("grant to worker %d (slot %d) decided with %d holders by the logs, effective limit %d, %d counted: %s",
				g.proc, g.slot, seen, g.limit, g.holders, strings.Join(who, "; "))
		}
	}
	t.Logf("throttle chaos: %d grants (%d gated), %d reports, %d SIGKILLs, peak %d holders of max %d",
		len(grants), gated, len(reports), kills, peak, maxSlots)
	if len(reports) < 5 || gated < 10 {
		t.Errorf("too little happened to judge: %d reports, %d gated grants", len(reports), gated)
	}

}
