//go:build linux

package main

import (
	"errors"
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
// 127.0.0.1 in this process, serves at most K calls at once and answers
// the rest at once with 429, "Retry-After: 1" (the header counts whole
// seconds) and "Retry-After-Ms": the time until its earliest call in
// progress ends, which is when a place frees, as a provider that limits
// concurrency knows. K changes mid-run: 6, then 2, then 6 again. 20 worker
// processes each loop: take a slot, run a job of several calls one after
// another (a 429 on any fails the job), release. Three ways to run them
// are compared in one run:
//
//	fixed 8      max 8, no reports: a worker whose job got a 429 waits the
//	             hint itself (after releasing), as a polite client does
//	best fixed   the same with max = K of the current phase: the best fixed
//	             max in hindsight
//	adaptive 8   max 8, and a 429 is reported with Guard.Throttled(hint)
//	             before the release: the whole pool pauses, its limit adapts

const thWorkers = 20

var thPhases = []int{6, 2, 6} // K, phase by phase

// A thShape is a kind of job: calls of one length, a number of them under
// one slot, and how long each phase of K lasts.
type thShape struct {
	call  time.Duration // how long the provider takes to answer one call
	calls int           // calls per job, one after another under one slot
	phase time.Duration
}

// thShapes are issue #21's: jobs of 5 calls of 200 ms in 15 s phases, and
// of 5 calls of 1 s in 60 s phases, where a round (one holding time) is
// 5 s and a policy counted in rounds recovers slowly.
var thShapes = []thShape{{200 * time.Millisecond, 5, 15 * time.Second}, {time.Second, 5, 60 * time.Second}}

// provider is the simulated provider.
type provider struct {
	start  int64         // monotonic ns
	phase  time.Duration // length of each phase
	call   time.Duration // length of each call
	mu     sync.Mutex
	ends   []int64 // monotonic ns at which each request in progress ends
	events []thEvent
}

type thEvent struct {
	at   int64 // monotonic ns, relative to start
	code int   // 200, 429; jobs: jobOK, jobFailed
}

const jobOK, jobFailed = 1, 2

func (pv *provider) k(now int64) int {
	i := int((now - pv.start) / int64(pv.phase))
	return thPhases[min(max(i, 0), len(thPhases)-1)]
}

func (pv *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := monotonic()
	pv.mu.Lock()
	if r.URL.Path == "/job" { // a worker tells how a job ended
		code := jobFailed
		if r.URL.Query().Get("ok") == "1" {
			code = jobOK
		}
		pv.events = append(pv.events, thEvent{now - pv.start, code})
		pv.mu.Unlock()
		return
	}
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
	end := now + int64(pv.call)
	pv.ends = append(pv.ends, end)
	pv.mu.Unlock()
	time.Sleep(pv.call)
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
	shapes := thShapes
	if *flagQuick {
		shapes = []thShape{{100 * time.Millisecond, 5, 3 * time.Second}} // too short to settle: indicative only
	}
	for _, sh := range shapes {
		if err := throttleShape(root, sh); err != nil {
			return err
		}
	}
	return nil
}

// throttleShape runs the three configurations on jobs of one shape and
// prints their rows.
func throttleShape(root string, sh thShape) error {
	fmt.Printf("\n## throttle: %d processes, each: take a slot, a job of %d calls of %v, release (a 429 on any call fails the job); the provider serves K calls at once (K = %v, %v each), 429 beyond\n",
		thWorkers, sh.calls, sh.call, thPhases, sh.phase)
	type config struct{ name, mode, max string }
	configs := []config{{"fixed max 8", "fixed", "8"}, {"best fixed max (K)", "best", "0"}, {"adaptive, max 8", "adaptive", "8"}}
	results := map[string]thResult{}
	for _, c := range configs {
		r, err := runThrottle(root, c.mode, c.max, sh)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		results[c.name] = r
	}
	fmt.Printf("| %-20s |", "configuration")
	for i, k := range thPhases {
		fmt.Printf(" phase %d (K=%d) jobs/s |", i+1, k)
	}
	fmt.Printf(" failed jobs | 429s | settle after each change of K |\n|---|")
	for range thPhases {
		fmt.Print("---|")
	}
	fmt.Println("---|---|---|")
	for _, c := range configs {
		r := results[c.name]
		fmt.Printf("| %-20s |", c.name)
		for _, g := range r.goodput {
			fmt.Printf(" %6.3f |", g)
		}
		var settle []string
		for _, s := range r.settle {
			if s < 0 {
				settle = append(settle, "never")
			} else {
				settle = append(settle, fmt.Sprintf("%.0fs", s.Seconds()))
			}
		}
		fmt.Printf(" %d | %d | %s |\n", r.failed, r.n429, strings.Join(settle, ", "))
	}
	ad, best, fixed := results["adaptive, max 8"], results["best fixed max (K)"], results["fixed max 8"]
	row := fmt.Sprintf("calls of %v, %v phases", sh.call, sh.phase)
	var worst float64 = 1e9
	var by []string
	for i := range thPhases {
		ratio := ad.goodput[i] / best.goodput[i]
		worst = min(worst, ratio)
		by = append(by, fmt.Sprintf("%.0f%%", 100*ratio))
	}
	fmt.Printf("adaptive vs best fixed, by phase: %s", strings.Join(by, " "))
	failedShare := float64(ad.failed) / float64(max(fixed.failed, 1))
	fmt.Printf("; adaptive's failed jobs are %.1f%% of fixed max 8's (%d of %d)\n", 100*failedShare, ad.failed, fixed.failed)
	check(row+": adaptive goodput >= 90 % of best fixed, each phase", worst >= 0.9, "worst phase %.0f%% (%s)", 100*worst, strings.Join(by, " "))
	check(row+": adaptive failed jobs <= 2 % of fixed max 8's", failedShare <= 0.02, "%.1f%% (%d of %d)", 100*failedShare, ad.failed, fixed.failed)
	return nil
}

type thResult struct {
	goodput []float64       // jobs done per second, by phase
	failed  int             // jobs failed by a 429, over the run
	n429    int             // 429s over the run
	settle  []time.Duration // by change of K; -1: never within the phase
}

// runThrottle runs the workers in mode against a fresh provider and pool.
func runThrottle(root, mode, max string, sh thShape) (thResult, error) {
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
	pv := &provider{phase: sh.phase, call: sh.call}
	srv := &http.Server{Handler: pv}
	go srv.Serve(ln)
	defer srv.Close()
	pv.start = monotonic() + int64(500*time.Millisecond) // time for every worker to start
	end := pv.start + int64(len(thPhases))*int64(sh.phase)
	var ws []*worker
	for range thWorkers {
		w, err := startWorker("throttle", "llmslots", dir, 8, "BENCH_MODE="+mode, "BENCH_TMAX="+max,
			"BENCH_URL=http://"+ln.Addr().String(), "BENCH_START="+strconv.FormatInt(pv.start, 10),
			"BENCH_END="+strconv.FormatInt(end, 10), "BENCH_PHASE="+sh.phase.String(), "BENCH_CALLS="+strconv.Itoa(sh.calls))
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
	return analyseThrottle(events, sh), failure
}

// analyseThrottle computes jobs done per second by phase (by when they
// ended), failed jobs and 429s over the run, and the time to settle after
// each change of K: the end of the last window of a job's length after
// the change (windows aligned on it) in which the calls answered fell
// below 80 % of K per call's length, or more than two calls got a 429;
// -1 if that window is the phase's last (it never settled).
func analyseThrottle(events []thEvent, sh thShape) thResult {
	r := thResult{goodput: make([]float64, len(thPhases))}
	win := time.Duration(sh.calls) * sh.call
	nwin := int(sh.phase / win)
	ok := make([][]int, len(thPhases))
	bad := make([][]int, len(thPhases))
	for i := range thPhases {
		ok[i], bad[i] = make([]int, nwin), make([]int, nwin)
	}
	for _, e := range events {
		if e.at < 0 || e.at >= int64(len(thPhases))*int64(sh.phase) {
			continue
		}
		p := int(e.at / int64(sh.phase))
		w := min(int((e.at-int64(p)*int64(sh.phase))/int64(win)), nwin-1)
		switch e.code {
		case jobOK:
			r.goodput[p]++
		case jobFailed:
			r.failed++
		case 200:
			ok[p][w]++
		default:
			r.n429++
			bad[p][w]++
		}
	}
	for p := range thPhases {
		r.goodput[p] /= sh.phase.Seconds()
		if p == 0 {
			continue
		}
		ideal := float64(thPhases[p]) / sh.call.Seconds() * win.Seconds()
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

// throttleWorker is one worker of the throttle workload (see throttle):
// jobs of BENCH_CALLS calls under one slot until BENCH_END.
func throttleWorker() int {
	dir, mode, url := os.Getenv("BENCH_DIR"), os.Getenv("BENCH_MODE"), os.Getenv("BENCH_URL")
	fixedMax, calls := envInt("BENCH_TMAX"), envInt("BENCH_CALLS")
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
		max, until := fixedMax, end // waiting past the end makes jobs no phase counts
		if mode == "best" {
			// max = K: a wait ends with the phase, to ask again with the next K.
			i := int((monotonic() - start) / int64(phase))
			max = thPhases[min(i, len(thPhases)-1)]
			until = min(end, start+int64(i+1)*int64(phase))
		}
		g, err := pool.Acquire(max, time.Duration(until-monotonic()))
		if errors.Is(err, llmslots.ErrBusy) {
			continue
		} else if err != nil {
			fmt.Println("error", err)
			return 1
		}
		var hint time.Duration
		for range calls {
			code, h, err := thCall(client, url)
			if err != nil {
				g.Release()
				if monotonic() >= end {
					return 0
				}
				fmt.Println("error", err)
				return 1
			}
			if code == http.StatusTooManyRequests {
				hint = h
				break
			}
		}
		if hint > 0 && mode == "adaptive" {
			g.Throttled(hint)
		}
		g.Release()
		client.Get(fmt.Sprintf("%s/job?ok=%d", url, map[bool]int{true: 1}[hint == 0]))
		if hint > 0 && mode != "adaptive" {
			time.Sleep(hint) // a polite client's own backoff
		}
	}
	return 0
}

// thCall makes one call, and returns its status and its retry hint.
func thCall(client *http.Client, url string) (int, time.Duration, error) {
	resp, err := client.Get(url + "/")
	if err != nil {
		return 0, 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	hint := time.Second
	if ms, err := strconv.Atoi(resp.Header.Get("Retry-After-Ms")); err == nil {
		hint = time.Duration(ms) * time.Millisecond
	}
	return resp.StatusCode, hint, nil
}
