//go:build linux

package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmslots/llmslots"
)

// The throttle workload: a simulated provider, an HTTP server on
// 127.0.0.1 in this process, serves at most K requests at once (each takes
// 200 ms) and answers the rest at once with 429, "Retry-After: 1" (the
// header counts whole seconds) and "Retry-After-Ms": the time until its
// earliest request in progress ends, which is when a slot frees, as a
// provider that limits concurrency knows. K changes mid-run: 6, then 2,
// then 6 again. 20 worker processes each loop: take a slot, send one
// request, release. Three ways to run them are compared in one run:
//
//	fixed 8      max 8, no reports: each worker that gets a 429 waits the
//	             hint itself (after releasing), as a polite client does
//	best fixed   the same with max = K of the current phase: the best fixed
//	             max in hindsight
//	adaptive 8   max 8, and a 429 is reported with Guard.Throttled(hint)
//	             before the release: the whole pool pauses, its limit adapts

const (
	thWorkers = 20
	thHold    = 200 * time.Millisecond
)

var thPhases = []int{6, 2, 6} // K, phase by phase

// provider is the simulated provider.
type provider struct {
	start  int64         // monotonic ns
	phase  time.Duration // length of each phase
	mu     sync.Mutex
	ends   []int64 // monotonic ns at which each request in progress ends
	events []thEvent
}

type thEvent struct {
	at   int64 // monotonic ns, relative to start
	code int
}

func (pv *provider) k(now int64) int {
	i := int((now - pv.start) / int64(pv.phase))
	return thPhases[min(max(i, 0), len(thPhases)-1)]
}

func (pv *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := monotonic()
	pv.mu.Lock()
	if len(pv.ends) >= pv.k(now) {
		earliest := pv.ends[0]
		for _, e := range pv.ends {
			earliest = min(earliest, e)
		}
		wait := max(time.Duration(earliest-now), time.Millisecond)
		pv.events = append(pv.events, thEvent{now - pv.start, 429})
		pv.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Retry-After-Ms", strconv.FormatInt(wait.Milliseconds()+1, 10))
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	end := now + int64(thHold)
	pv.ends = append(pv.ends, end)
	pv.mu.Unlock()
	time.Sleep(thHold)
	pv.mu.Lock()
	for i, e := range pv.ends {
		if e == end {
			pv.ends = append(pv.ends[:i], pv.ends[i+1:]...)
			break
		}
	}
	pv.events = append(pv.events, thEvent{monotonic() - pv.start, 200})
	pv.mu.Unlock()
	io.WriteString(w, "ok\n")
}

func throttle(root string) error {
	phase := 20 * time.Second
	if *flagQuick {
		phase = 2 * time.Second // too short to settle after 2->6: indicative only
	}
	fmt.Printf("\n## throttle: %d processes, each: take a slot, one %v request, release; the provider serves K at once (K = %v, %v each), 429 beyond\n",
		thWorkers, thHold, thPhases, phase)
	type config struct{ name, mode, max string }
	configs := []config{{"fixed max 8", "fixed", "8"}, {"best fixed max (K)", "best", "0"}, {"adaptive, max 8", "adaptive", "8"}}
	results := map[string]thResult{}
	for _, c := range configs {
		r, err := runThrottle(root, c.mode, c.max, phase)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		results[c.name] = r
	}
	fmt.Printf("| %-20s |", "configuration")
	for i, k := range thPhases {
		fmt.Printf(" phase %d (K=%d) req/s |", i+1, k)
	}
	fmt.Printf(" 429s | settle after each change of K |\n|---|")
	for range thPhases {
		fmt.Print("---|")
	}
	fmt.Println("---|---|")
	for _, c := range configs {
		r := results[c.name]
		fmt.Printf("| %-20s |", c.name)
		for _, g := range r.goodput {
			fmt.Printf(" %6.2f |", g)
		}
		var settle []string
		for _, s := range r.settle {
			if s < 0 {
				settle = append(settle, "never")
			} else {
				settle = append(settle, fmt.Sprintf("%.1fs", s.Seconds()))
			}
		}
		fmt.Printf(" %d | %s |\n", r.n429, strings.Join(settle, ", "))
	}
	ad, best, fixed := results["adaptive, max 8"], results["best fixed max (K)"], results["fixed max 8"]
	fmt.Print("adaptive vs best fixed, by phase:")
	for i := range thPhases {
		fmt.Printf(" %.0f%%", 100*ad.goodput[i]/best.goodput[i])
	}
	if fixed.n429 > 0 {
		fmt.Printf("; adaptive's 429s are %.1f%% of fixed max 8's", 100*float64(ad.n429)/float64(fixed.n429))
	}
	fmt.Println()
	return nil
}

type thResult struct {
	goodput []float64       // successful requests/s, by phase
	n429    int             // 429s over the run
	settle  []time.Duration // by change of K; -1: never within the phase
}

// runThrottle runs the workers in mode against a fresh provider and pool.
func runThrottle(root, mode, max string, phase time.Duration) (thResult, error) {
	dir, err := os.MkdirTemp(root, "throttle-")
	if err != nil {
		return thResult{}, err
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o700)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return thResult{}, err
	}
	pv := &provider{phase: phase}
	srv := &http.Server{Handler: pv}
	go srv.Serve(ln)
	defer srv.Close()
	pv.start = monotonic() + int64(500*time.Millisecond) // time for every worker to start
	end := pv.start + int64(len(thPhases))*int64(phase)
	var ws []*worker
	for range thWorkers {
		w, err := startWorker("throttle", "llmslots", dir, 8, "BENCH_MODE="+mode, "BENCH_TMAX="+max,
			"BENCH_URL=http://"+ln.Addr().String()+"/", "BENCH_START="+strconv.FormatInt(pv.start, 10),
			"BENCH_END="+strconv.FormatInt(end, 10), "BENCH_PHASE="+phase.String())
		if err != nil {
			return thResult{}, err
		}
		ws = append(ws, w)
	}
	var failure error
	for i, w := range ws {
		for w.out.Scan() {
			if line := w.out.Text(); strings.HasPrefix(line, "error") && failure == nil {
				failure = fmt.Errorf("worker %d: %s", i, line)
			}
		}
		if err := w.cmd.Wait(); err != nil && failure == nil {
			failure = fmt.Errorf("worker %d: %v", i, err)
		}
	}
	pv.mu.Lock()
	events := append([]thEvent(nil), pv.events...)
	pv.mu.Unlock()
	return analyseThrottle(events, phase), failure
}

// analyseThrottle computes goodput per phase, 429s, and the time to settle
// after each change of K: the end of the last 1 s window after the change
// (windows aligned on it) in which goodput was below 80 % of K per
// holding time, or more than two requests got a 429; -1 if that window is
// the phase's last (it never settled).
func analyseThrottle(events []thEvent, phase time.Duration) thResult {
	r := thResult{goodput: make([]float64, len(thPhases))}
	const win = time.Second
	nwin := int(phase / win)
	ok := make([][]int, len(thPhases))
	bad := make([][]int, len(thPhases))
	for i := range thPhases {
		ok[i], bad[i] = make([]int, nwin), make([]int, nwin)
	}
	for _, e := range events {
		if e.at < 0 || e.at >= int64(len(thPhases))*int64(phase) {
			continue
		}
		p := int(e.at / int64(phase))
		w := min(int((e.at-int64(p)*int64(phase))/int64(win)), nwin-1)
		if e.code == 200 {
			r.goodput[p]++
			ok[p][w]++
		} else {
			r.n429++
			bad[p][w]++
		}
	}
	for p := range thPhases {
		r.goodput[p] /= phase.Seconds()
		if p == 0 {
			continue
		}
		ideal := float64(thPhases[p]) / thHold.Seconds() * win.Seconds()
		last := -1
		for w := range nwin {
			if float64(ok[p][w]) < 0.8*ideal || bad[p][w] > 2 {
				last = w
			}
		}
		switch {
		case last == nwin-1:
			r.settle = append(r.settle, -1)
		default:
			r.settle = append(r.settle, time.Duration(last+1)*win)
		}
	}
	return r
}

// throttleWorker is one worker of the throttle workload (see throttle).
func throttleWorker() int {
	dir, mode, url := os.Getenv("BENCH_DIR"), os.Getenv("BENCH_MODE"), os.Getenv("BENCH_URL")
	fixedMax := envInt("BENCH_TMAX")
	start, end := int64(envInt("BENCH_START")), int64(envInt("BENCH_END"))
	phase := envDuration("BENCH_PHASE")
	pool, err := llmslots.NewPool(dir)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for monotonic() < start {
		time.Sleep(time.Duration(start-monotonic()) + 1)
	}
	for monotonic() < end {
		max := fixedMax
		if mode == "best" {
			i := int((monotonic() - start) / int64(phase))
			max = thPhases[min(i, len(thPhases)-1)]
		}
		g, err := pool.Acquire(max, time.Minute)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		resp, err := client.Get(url)
		if err != nil {
			g.Release()
			if monotonic() >= end {
				break
			}
			fmt.Println("error", err)
			return 1
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		var hint time.Duration
		if resp.StatusCode == http.StatusTooManyRequests {
			hint = time.Second
			if ms, err := strconv.Atoi(resp.Header.Get("Retry-After-Ms")); err == nil {
				hint = time.Duration(ms) * time.Millisecond
			}
			if mode == "adaptive" {
				g.Throttled(hint)
			}
		}
		g.Release()
		if hint > 0 && mode != "adaptive" {
			time.Sleep(hint) // a polite client's own backoff
		}
	}
	return 0
}
