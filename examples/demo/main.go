// Command demo shows llmslots at work: eight worker processes share a pool
// of two slots; each takes a slot, "calls the LLM" for a few hundred
// milliseconds and releases it; one is killed with SIGKILL while it holds
// its slot. It prints what happened and a timeline, and checks from the
// workers' own reports that no more than two ever held a slot at once.
//
//	go run ./examples/demo
//
// It uses a private temporary pool, never the user's real slots.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmslots/llmslots"
)

const workerEnv = "LLMSLOTS_DEMO_WORKER"

func main() {
	if w := os.Getenv(workerEnv); w != "" {
		os.Exit(worker(w))
	}
	workers := flag.Int("workers", 8, "worker processes")
	limit := flag.Int("max", 2, "slots in the pool")
	victim := flag.Int("kill", 5, "worker to SIGKILL while it holds its slot (0: none)")
	flag.Parse()
	if err := run(*workers, *limit, *victim); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// worker takes a slot from the pool in LLMSLOTS_DIR, reports, holds it
// for the given time, releases it, reports.
func worker(spec string) int {
	hold, _ := time.ParseDuration(spec)
	g, err := llmslots.Acquire(mustAtoi(os.Getenv("DEMO_MAX")), 30*time.Second)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("acquired", g.SlotID(), time.Now().UnixNano())
	time.Sleep(hold) // stands in for `codex exec ...`
	end := time.Now().UnixNano()
	if err := g.Release(); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("released", g.SlotID(), end)
	return 0
}

type event struct {
	at   time.Time
	text string
}

type span struct {
	worker, slot int
	start, end   time.Time
	killed       bool
}

func run(workers, limit, victim int) error {
	tmp, err := os.MkdirTemp("", "llmslots-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "pool")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("llmslots demo: %d worker processes, one pool of %d slots in %s\n", workers, limit, dir)
	fmt.Printf("each worker takes a slot, works 300-500 ms, releases it")
	if victim > 0 {
		fmt.Printf("; worker %d is SIGKILLed while it holds its slot", victim)
	}
	fmt.Print("\n\n")

	t0 := time.Now()
	var (
		mu    sync.Mutex
		spans []span
		wg    sync.WaitGroup
		fails []string
		log   []event // printed in time order once all is done
	)
	say := func(t time.Time, format string, args ...any) {
		log = append(log, event{t, fmt.Sprintf("%+6dms  ", t.Sub(t0).Milliseconds()) + fmt.Sprintf(format, args...)})
	}
	killedAt := make(chan time.Time, 1)
	fmt.Println("running...")
	for w := 1; w <= workers; w++ {
		hold := time.Duration(300+(w*73)%200) * time.Millisecond
		if w == victim {
			hold = time.Hour // it will not finish on its own
		}
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), workerEnv+"="+hold.String(), llmslots.EnvDir+"="+dir, "DEMO_MAX="+strconv.Itoa(limit))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			var cur span
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) != 3 || f[0] == "error" {
					mu.Lock()
					fails = append(fails, fmt.Sprintf("worker %d: %s", w, sc.Text()))
					mu.Unlock()
					continue
				}
				when := time.Unix(0, int64(mustAtoi(f[2])))
				mu.Lock()
				switch f[0] {
				case "acquired":
					cur = span{worker: w, slot: mustAtoi(f[1]), start: when}
					say(when, "worker %d (pid %d) took slot %d", w, cmd.Process.Pid, cur.slot)
					if w == victim {
						go func() {
							time.Sleep(150 * time.Millisecond)
							// The kill's time, taken before it is sent,
							// ends the worker's hold: the kernel frees the
							// slot only after, so the check below never
							// counts a hold longer than it was.
							killedAt <- time.Now()
							cmd.Process.Kill()
						}()
					}
				case "released":
					cur.end = when
					spans = append(spans, cur)
					say(when, "worker %d released slot %d", w, cur.slot)
				}
				mu.Unlock()
			}
			err := cmd.Wait()
			if w == victim && cur.end.IsZero() && !cur.start.IsZero() {
				end := <-killedAt
				mu.Lock()
				cur.end, cur.killed = end, true
				spans = append(spans, cur)
				say(end, "worker %d SIGKILLed while holding slot %d (%v); nobody cleans up", w, cur.slot, err)
				mu.Unlock()
			}
		}(w)
		time.Sleep(10 * time.Millisecond) // arrive in order, for a readable log
	}
	wg.Wait()
	total := time.Since(t0)
	sort.SliceStable(log, func(i, j int) bool { return log[i].at.Before(log[j].at) })
	for _, e := range log {
		fmt.Println(e.text)
	}

	sort.Slice(spans, func(i, j int) bool { return spans[i].worker < spans[j].worker })
	const col = 50 * time.Millisecond
	width := int(total/col) + 1
	fmt.Printf("\ntimeline, one column = %v, the digit is the slot held (x: killed there):\n", col)
	for _, s := range spans {
		line := []byte(strings.Repeat(" ", width))
		from, to := int(s.start.Sub(t0)/col), int(s.end.Sub(t0)/col)
		for c := from; c <= to && c < width; c++ {
			line[c] = byte('0' + s.slot%10)
		}
		if s.killed && to < width {
			line[to] = 'x'
		}
		fmt.Printf("  worker %d |%s|\n", s.worker, line)
	}

	// Check the limit from the workers' own reports.
	type edge struct {
		t     time.Time
		delta int
	}
	var edges []edge
	for _, s := range spans {
		edges = append(edges, edge{s.start, 1}, edge{s.end, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if !edges[i].t.Equal(edges[j].t) {
			return edges[i].t.Before(edges[j].t)
		}
		return edges[i].delta < edges[j].delta
	})
	peak, n := 0, 0
	for _, e := range edges {
		n += e.delta
		peak = max(peak, n)
	}
	fmt.Printf("\n%d of %d workers got a slot; at most %d held at once (limit %d); %s in all\n",
		len(spans), workers, peak, limit, total.Round(time.Millisecond))
	pool, err := llmslots.NewPool(dir)
	if err != nil {
		return err
	}
	st, err := pool.ReadStatus(limit)
	if err != nil {
		return err
	}
	fmt.Printf("afterwards: %d held, %d stale, %d free", st.Active, st.Stale, st.Free)
	if st.Stale > 0 {
		fmt.Print(" (a stale file is the killed worker's: nobody cleaned up)")
	}
	fmt.Println()
	// Nothing leaked: one acquirer can take every slot at once, reclaiming
	// any stale one on the spot.
	begin := time.Now()
	for range limit {
		g, err := pool.Acquire(limit, 0)
		if err != nil {
			return fmt.Errorf("a slot leaked: %w", err)
		}
		defer g.Release()
	}
	fmt.Printf("a fresh acquirer took all %d slots in %v: nothing leaked\n", limit, time.Since(begin).Round(time.Microsecond))
	if len(fails) > 0 || peak > limit || len(spans) != workers {
		return fmt.Errorf("something went wrong: %v", fails)
	}
	return nil
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}
