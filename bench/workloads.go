//go:build linux

package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// stratNames are the strategies compared side by side: the library and
// the reference.
var stratNames = []string{"llmslots", "reference"}

// uncontended times one acquire+release with nobody else about, for each
// strategy and for the floor: bare create-exclusive + flock + unlink +
// close on the same kind of directory.
func uncontended(root string) error {
	fmt.Println("\n## uncontended acquire+release (ns/op, median of runs)")
	loops := map[string]func(dir string) func(){
		"floor": func(dir string) func() {
			path := filepath.Join(dir, "slot-0.lock")
			return func() {
				fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
				if err != nil {
					panic(err)
				}
				unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
				unix.Unlink(path)
				unix.Close(fd)
			}
		},
	}
	for _, name := range stratNames {
		take := strategies[name]
		loops[name] = func(dir string) func() {
			return func() {
				release, _, err := take(dir, 4, 0)
				if err != nil {
					panic(err)
				}
				release()
			}
		}
	}
	// Rounds interleave the loops, so that a noisy moment on the machine
	// falls on all of them alike.
	names := []string{"floor", "llmslots", "reference"}
	runs := map[string][]float64{}
	for range *flagRuns + 2 { // a few more: these runs are short
		for _, name := range names {
			dir, err := os.MkdirTemp(root, "u-")
			if err != nil {
				return err
			}
			os.Chmod(dir, 0o700)
			runs[name] = append(runs[name], timeLoop(loops[name](dir)))
			os.RemoveAll(dir)
		}
	}
	res := map[string]float64{}
	for _, name := range names {
		res[name] = median(runs[name])
	}
	fmt.Printf("| %-28s | %10s | %9s |\n|---|---|---|\n", "loop", "ns/op", "vs floor")
	for _, name := range names {
		fmt.Printf("| %-28s | %10.0f | %8.2fx |\n", name, res[name], res[name]/res["floor"])
	}
	check("uncontended acquire+release <= the reference's", res["llmslots"] <= res["reference"],
		"%.0f ns/op against %.0f", res["llmslots"], res["reference"])
	return nil
}

// timeLoop runs f for about half a second and returns ns per call.
func timeLoop(f func()) float64 {
	for range 200 {
		f() // warm up
	}
	n, start := 0, time.Now()
	for time.Since(start) < 500*time.Millisecond {
		for range 100 {
			f()
		}
		n += 100
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

// saturated: 8 processes, max 2, hold 10 ms, think 0-20 ms.
func saturated(root string) error {
	const procs, max = 8, 2
	length := 5 * time.Second
	if *flagQuick {
		length = 2 * time.Second
	}
	fmt.Printf("\n## saturated: %d processes, max %d, hold 10 ms, think 0-20 ms, %v a run (medians of %d runs)\n",
		procs, max, length, *flagRuns)
	rows := map[string][]satResult{}
	for range *flagRuns {
		for _, name := range stratNames {
			cycles, start, end, _, err := runCycles(root, name, procs, max, 10*time.Millisecond, 20*time.Millisecond, length)
			if err != nil {
				return err
			}
			rows[name] = append(rows[name], analyse(cycles, start, end, max, procs))
		}
	}
	type metric struct {
		name string
		get  func(satResult) float64
		unit string
	}
	metrics := []metric{
		{"slot utilization", func(r satResult) float64 { return r.utilization }, ""},
		{"handoff p50", func(r satResult) float64 { return r.handoffP50 }, "ms"},
		{"handoff p99", func(r satResult) float64 { return r.handoffP99 }, "ms"},
		{"FIFO inversions", func(r satResult) float64 { return 100 * r.inversions }, "% of pairs"},
		// Two waiters served a few microseconds apart may return in the
		// other order (the scheduler runs the second first): how far
		// apart the returns of inverted pairs were tells that from a
		// waiter served out of turn.
		{"  of which > 1 ms apart", func(r satResult) float64 { return 100 * r.farInversions }, "% of pairs"},
		{"  largest inversion", func(r satResult) float64 { return r.largestInversion }, "ms"},
		{"total wait, max/min process", func(r satResult) float64 { return r.spread }, "x"},
		{"cycles", func(r satResult) float64 { return float64(r.cycles) }, ""},
	}
	fmt.Printf("| %-36s | %12s | %12s | %10s |\n|---|---|---|---|\n", "metric", "llmslots", "reference", "ratio")
	for _, m := range metrics {
		a, b := medianOf(rows["llmslots"], m.get), medianOf(rows["reference"], m.get)
		fmt.Printf("| %-36s | %12s | %12s | %10s |\n", m.name+unitSuffix(m.unit), fmtNum(a), fmtNum(b), ratio(a, b))
	}
	lib := func(get func(satResult) float64) float64 { return medianOf(rows["llmslots"], get) }
	util := lib(func(r satResult) float64 { return r.utilization })
	p50 := lib(func(r satResult) float64 { return r.handoffP50 })
	p99 := lib(func(r satResult) float64 { return r.handoffP99 })
	inv := lib(func(r satResult) float64 { return 100 * r.inversions })
	check("saturated: utilization >= 0.95", util >= 0.95, "%.3f", util)
	check("saturated: handoff p50 <= 0.5 ms", p50 <= 0.5, "%.3f ms", p50)
	check("saturated: handoff p99 <= 2 ms", p99 <= 2, "%.3f ms", p99)
	check("saturated: FIFO inversions <= 0.5 %", inv <= 0.5, "%.3f %% of pairs", inv)
	return nil
}

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " (" + u + ")"
}

type satResult struct {
	utilization, handoffP50, handoffP99, inversions, spread float64
	farInversions, largestInversion                         float64 // inversions more than 1 ms apart; the largest gap (ms)
	cycles                                                  int
}

// analyse computes the saturated workload's figures from the workers'
// own reports.
func analyse(cycles []cycle, start, end int64, max, procs int) satResult {
	var r satResult
	r.cycles = len(cycles)
	var held int64
	var releases []int64
	for _, c := range cycles {
		a, b := maxInt(c.acquired, start), minInt(c.released, end)
		if b > a {
			held += b - a
		}
		releases = append(releases, c.released)
	}
	r.utilization = float64(held) / float64(int64(max)*(end-start))
	sort.Slice(releases, func(i, j int) bool { return releases[i] < releases[j] })

	// Handoff: for a cycle that had to wait, from the last release before
	// its acquisition (made while it waited) to that acquisition.
	var handoffs []float64
	var waited []cycle
	for _, c := range cycles {
		i := sort.Search(len(releases), func(i int) bool { return releases[i] >= c.acquired }) - 1
		if i < 0 || releases[i] < c.arrive {
			continue // got a slot at once
		}
		handoffs = append(handoffs, float64(c.acquired-releases[i])/1e6)
		waited = append(waited, c)
	}
	r.handoffP50, r.handoffP99 = percentile(handoffs, 50), percentile(handoffs, 99)

	// FIFO inversions: pairs of waits that overlapped, served out of the
	// order they arrived in.
	sort.Slice(waited, func(i, j int) bool { return waited[i].arrive < waited[j].arrive })
	var pairs, inv, far int
	for i, a := range waited {
		for _, b := range waited[i+1:] {
			if b.arrive >= a.acquired {
				break
			}
			if b.proc == a.proc {
				continue
			}
			pairs++
			if b.acquired < a.acquired {
				inv++
				gap := float64(a.acquired-b.acquired) / 1e6
				if gap > 1 {
					far++
				}
				r.largestInversion = math.Max(r.largestInversion, gap)
			}
		}
	}
	if pairs > 0 {
		r.inversions = float64(inv) / float64(pairs)
		r.farInversions = float64(far) / float64(pairs)
	}

	// Spread: total time each process spent waiting, largest over
	// smallest.
	total := make([]int64, procs)
	for _, c := range cycles {
		total[c.proc] += c.acquired - c.arrive
	}
	lo, hi := total[0], total[0]
	for _, t := range total {
		lo, hi = minInt(lo, t), maxInt(hi, t)
	}
	if lo > 0 {
		r.spread = float64(hi) / float64(lo)
	}
	return r
}

// idle: 20 waiters blocked behind max holders (one process per slot), for
// max 4 and max 64; the waiters' CPU time and wake-ups (voluntary context
// switches of all threads) per waiter-second.
func idle(root string) error {
	const waiters = 20
	window, settle := 3*time.Second, time.Second
	if *flagQuick {
		window, settle = time.Second, time.Second/2
	}
	fmt.Printf("\n## idle: %d waiters blocked for %v behind max holders (per waiter-second, medians of %d runs)\n", waiters, window, *flagRuns)
	fmt.Printf("| %-8s | %-10s | %12s | %12s | %10s |\n|---|---|---|---|---|\n", "pool", "metric", "llmslots", "reference", "ratio")
	for _, max := range []int{4, 64} {
		cpu, wake := map[string][]float64{}, map[string][]float64{}
		for range *flagRuns {
			for _, name := range stratNames {
				c, w, err := idleRun(root, name, max, waiters, settle, window)
				if err != nil {
					return err
				}
				cpu[name] = append(cpu[name], c)
				wake[name] = append(wake[name], w)
			}
		}
		for _, m := range []struct {
			name string
			xs   map[string][]float64
		}{{"CPU (ms)", cpu}, {"wake-ups", wake}} {
			a, b := median(m.xs["llmslots"]), median(m.xs["reference"])
			fmt.Printf("| %-8s | %-10s | %12s | %12s | %10s |\n", fmt.Sprintf("max %d", max), m.name, fmtNum(a), fmtNum(b), ratio(a, b))
		}
		c, w := median(cpu["llmslots"]), median(wake["llmslots"])
		check(fmt.Sprintf("idle, max %d: <= 0.5 wake-ups per waiter-second", max), w <= 0.5, "%.3f", w)
		check(fmt.Sprintf("idle, max %d: <= 0.05 ms CPU per waiter-second", max), c <= 0.05, "%.3f ms", c)
	}
	return nil
}

// idleRun starts max holders on a fresh pool of max slots, then waiters
// more processes that wait; it returns the waiters' CPU (ms) and wake-ups
// per waiter-second over window, after settle.
func idleRun(root, name string, max, waiters int, settle, window time.Duration) (cpu, wake float64, err error) {
	dir, err := os.MkdirTemp(root, "idle-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o700)
	var holders, ws []*worker
	defer func() {
		for _, w := range append(ws, holders...) {
			w.stop()
		}
	}()
	for range max {
		h, err := startWorker("hold", name, dir, max)
		if err != nil {
			return 0, 0, err
		}
		holders = append(holders, h)
		if _, err := h.expect("held"); err != nil {
			return 0, 0, err
		}
	}
	for range waiters {
		w, err := startWorker("hold", name, dir, max)
		if err != nil {
			return 0, 0, err
		}
		ws = append(ws, w)
	}
	for _, w := range ws {
		if _, err := w.expect("waiting"); err != nil {
			return 0, 0, err
		}
	}
	time.Sleep(settle) // every waiter settles into waiting
	cpu0, cs0 := usage(ws)
	time.Sleep(window)
	cpu1, cs1 := usage(ws)
	ws0 := float64(waiters) * window.Seconds()
	return (cpu1 - cpu0) / ws0, (cs1 - cs0) / ws0, nil
}

// reclaim: the holder of a pool of max 1 is killed (SIGKILL) while a
// waiter is blocked in its acquire; the time from the kill (the clock read
// just before kill(2)) to the waiter's acquisition (its own timestamp), on
// the machine-wide monotonic clock. That waiter is then the holder the
// next repetition kills. Beside it the floor: the same with a waiter
// blocked in a bare flock, which is what the kernel takes to end the
// process and hand its lock on. The reference never reclaims a killed
// holder's slot (its file blocks the slot until someone removes it).
func reclaim(root string) error {
	reps := 40
	if *flagQuick {
		reps = 20
	}
	fmt.Printf("\n## reclaim: the holder of max 1 killed (SIGKILL) while a waiter is blocked; kill to the waiter's acquisition (ms, %d kills a run, medians of %d runs)\n", reps, *flagRuns)
	names := []string{"floor", "llmslots"}
	p50, p99, worst := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	for range *flagRuns {
		for _, name := range names {
			xs, err := reclaimRun(root, name, reps)
			if err != nil {
				return err
			}
			p50[name] = append(p50[name], percentile(xs, 50))
			p99[name] = append(p99[name], percentile(xs, 99))
			worst[name] = append(worst[name], percentile(xs, 100))
		}
	}
	fmt.Printf("| %-12s | %12s | %12s | %12s |\n|---|---|---|---|\n", "metric", "floor", "llmslots", "reference")
	for _, m := range []struct {
		name string
		xs   map[string][]float64
	}{{"p50 (ms)", p50}, {"p99 (ms)", p99}, {"largest (ms)", worst}} {
		fmt.Printf("| %-12s | %12s | %12s | %12s |\n", m.name, fmtNum(median(m.xs["floor"])), fmtNum(median(m.xs["llmslots"])), "never")
	}
	check("reclaim after a holder's SIGKILL <= 1 ms at p99", median(p99["llmslots"]) <= 1,
		"p99 %.3f ms (p50 %.3f; floor's p99 %.3f)", median(p99["llmslots"]), median(p50["llmslots"]), median(p99["floor"]))
	return nil
}

// reclaimRun makes reps kills on a fresh pool of max 1 and returns the
// times to reclaim (ms).
func reclaimRun(root, name string, reps int) ([]float64, error) {
	dir, err := os.MkdirTemp(root, "reclaim-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o700)
	holder, err := startWorker("hold", name, dir, 1)
	if err != nil {
		return nil, err
	}
	defer func() { holder.stop() }()
	if _, err := holder.expect("held"); err != nil {
		return nil, err
	}
	var xs []float64
	for range reps {
		w, err := startWorker("hold", name, dir, 1, "BENCH_WAIT=10s") // a slot never reclaimed is an error, not a hang
		if err != nil {
			return nil, err
		}
		if _, err := w.expect("waiting"); err != nil {
			w.stop()
			return nil, err
		}
		time.Sleep(50 * time.Millisecond) // it gets to its wait
		killed := monotonic()
		unix.Kill(holder.cmd.Process.Pid, unix.SIGKILL)
		acquired, err := w.expect("held")
		holder.cmd.Wait()
		holder = w
		if err != nil {
			return nil, err
		}
		xs = append(xs, float64(acquired-killed)/1e6)
	}
	return xs, nil
}

// usage sums the workers' CPU time (ms, from schedstat's nanoseconds on
// CPU) and voluntary context switches, over all their threads, as the
// kernel counts them.
func usage(ws []*worker) (cpuMS, switches float64) {
	for _, w := range ws {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", w.cmd.Process.Pid))
		for _, t := range tasks {
			if data, err := os.ReadFile(t + "/schedstat"); err == nil {
				if f := strings.Fields(string(data)); len(f) > 0 {
					ns, _ := strconv.ParseFloat(f[0], 64)
					cpuMS += ns / 1e6
				}
			}
			data, err := os.ReadFile(t + "/status")
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
					n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
					switches += n
				}
			}
		}
	}
	return cpuMS, switches
}

// scale: does the cost per acquire stay flat as waiters and slots grow?
// Workers cycle with a 2 ms hold and no think time; CPU time is what the
// kernel charged the workers (rusage) between the run's start and end, over
// the acquisitions they made: their start-up and exit are left out.
func scale(root string) error {
	length := 3 * time.Second
	if *flagQuick {
		length = time.Second / 2
	}
	fmt.Printf("\n## scale: processes cycling with a 2 ms hold, %v a run (medians of %d runs)\n", length, *flagRuns)
	fmt.Println("floor: one process blocked in flock woken by another, no queue (see floorSlot); fairfloor: tokens handed round a ring of pipes, first in, first out, one process woken per handoff (see fairFloorSlot); x floor, x fair: CPU per acquisition over the floor's, the fair floor's")
	fmt.Printf("| %-24s | %-9s | %12s | %12s | %9s | %9s | %12s | %12s |\n|---|---|---|---|---|---|---|---|\n", "workload", "strategy", "acquires/s", "CPU µs/acq", "x floor", "x fair", "switches/acq", "handoff p50 ms")
	rows := []struct{ procs, max int }{{8, 4}, {64, 4}, {64, 256}, {256, 4}}
	if *flagQuick {
		rows = rows[:3] // 256 processes take a while to start on a small machine
	}
	for _, sc := range rows {
		type med struct{ rate, cost float64 }
		got := map[string]med{}
		for _, name := range append([]string{"floor", "fairfloor"}, stratNames...) {
			if *flagStrat != "" && !strings.Contains(","+*flagStrat+",", ","+name+",") {
				continue
			}
			var rate, cost, hand, switches []float64
			for range *flagRuns {
				cycles, start, end, use, err := runCycles(root, name, sc.procs, sc.max, 2*time.Millisecond, 0, length)
				if err != nil {
					return err
				}
				// The workers' use is taken at the end time: so are the
				// acquisitions it is shared over.
				n := 0
				for _, c := range cycles {
					if c.acquired <= end {
						n++
					}
				}
				switches = append(switches, float64(use.switches)/float64(n))
				r := analyse(cycles, start, end, sc.max, sc.procs)
				rate = append(rate, float64(n)/length.Seconds())
				cost = append(cost, use.cpu.Seconds()*1e6/float64(n))
				hand = append(hand, r.handoffP50)
			}
			got[name] = med{median(rate), median(cost)}
			fmt.Printf("| %-24s | %-9s | %12s | %12s | %9s | %9s | %12s | %12s |\n", fmt.Sprintf("%d processes, max %d", sc.procs, sc.max), name,
				fmtNum(median(rate)), fmtNum(median(cost)), ratio(median(cost), got["floor"].cost), ratio(median(cost), got["fairfloor"].cost), fmtNum(median(switches)), fmtNum(median(hand)))
		}
		lib, fair, floor := got["llmslots"], got["fairfloor"], got["floor"]
		if lib.cost == 0 {
			continue
		}
		row := fmt.Sprintf("scale, %d processes, max %d", sc.procs, sc.max)
		switch {
		case sc.max == 4 && fair.cost > 0:
			limit := 2.5
			if sc.procs > 64 {
				limit = 4
			}
			check(fmt.Sprintf("%s: CPU/acq <= %gx the fair floor's", row, limit), lib.cost <= limit*fair.cost,
				"%s µs against %s (%.2fx)", fmtNum(lib.cost), fmtNum(fair.cost), lib.cost/fair.cost)
			check(row+": acquires/s >= 85 % of the fair floor's", lib.rate >= 0.85*fair.rate,
				"%s against %s (%.0f %%)", fmtNum(lib.rate), fmtNum(fair.rate), 100*lib.rate/fair.rate)
		case sc.max == 256 && floor.cost > 0:
			// Issue #20 asks that 64 processes on max 256 acquire "within
			// 2x an empty pool's acquire". Read here as: llmslots's CPU per
			// acquisition in this row at most twice the floor's in the same
			// row. With 64 processes on 256 slots nobody waits, so the
			// floor's cycle is an acquire of a free lock (open + flock)
			// with the same hold, timers and wake-ups around it: the
			// cheapest an empty pool's acquire can be, while llmslots's
			// acquire here also passes the slots the others hold.
			check(row+": CPU/acq <= 2x the floor's (an empty pool's acquire)", lib.cost <= 2*floor.cost,
				"%s µs against %s (%.2fx)", fmtNum(lib.cost), fmtNum(floor.cost), lib.cost/floor.cost)
		}
	}
	return nil
}

// manyHolders: 512 processes hold slots of a pool of 1024; one more
// acquire+release, timed, against the same on an empty pool. Lowest-first
// scanning passes every held slot.
func manyHolders(root string) error {
	const holders, max = 512, 1024
	fmt.Printf("\n## %d holders on max %d: one acquire+release (µs, median of %d runs)\n", holders, max, *flagRuns)
	fmt.Printf("| %-10s | %12s | %12s | %10s |\n|---|---|---|---|\n", "strategy", "empty pool", "512 held", "ratio")
	for _, name := range []string{"llmslots", "reference"} {
		dir, err := os.MkdirTemp(root, "many-")
		if err != nil {
			return err
		}
		os.Chmod(dir, 0o700)
		take := strategies[name]
		timeOne := func() float64 {
			var xs []float64
			for range 50 {
				t0 := time.Now()
				release, _, err := take(dir, max, 0)
				if err != nil {
					return -1
				}
				release()
				xs = append(xs, float64(time.Since(t0).Nanoseconds())/1e3)
			}
			return median(xs)
		}
		var empty, full []float64
		for range *flagRuns {
			empty = append(empty, timeOne())
		}
		var ws []*worker
		for range holders {
			w, err := startWorker("hold", name, dir, max)
			if err != nil {
				return err
			}
			ws = append(ws, w)
		}
		for _, w := range ws {
			if _, err := w.expect("held"); err != nil {
				return err
			}
		}
		for range *flagRuns {
			full = append(full, timeOne())
		}
		for _, w := range ws {
			w.stop()
		}
		os.RemoveAll(dir)
		e, f := median(empty), median(full)
		fmt.Printf("| %-10s | %12s | %12s | %9.2fx |\n", name, fmtNum(e), fmtNum(f), f/e)
		if name == "llmslots" {
			check("512 held of 1024: acquire <= 2x an empty pool's", f <= 2*e, "%s µs against %s (%.2fx)", fmtNum(f), fmtNum(e), f/e)
		}
	}
	return nil
}

func median(xs []float64) float64 { return percentile(xs, 50) }

func medianOf(rs []satResult, get func(satResult) float64) float64 {
	var xs []float64
	for _, r := range rs {
		xs = append(xs, get(r))
	}
	return median(xs)
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}

func fmtNum(x float64) string {
	switch {
	case x == 0:
		return "0"
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 1:
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%.3f", x)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3gx", a/b)
}

func minInt(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
