package llmslots_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmslots/llmslots"
)

// The usual use: take one of 4 host-wide slots, give up after 30 s, and
// run the LLM subprocess through the guard, so that the child holds the
// slot too: the limit holds for the codex or claude processes themselves,
// even if this program is killed while they run.
func ExampleAcquire() {
	// For the example only: a private slot directory. Real callers leave
	// LLMSLOTS_DIR alone and share the per-user default.
	dir, _ := os.MkdirTemp("", "llmslots-example-")
	defer os.RemoveAll(dir)
	os.Setenv(llmslots.EnvDir, dir)
	defer os.Unsetenv(llmslots.EnvDir)

	g, err := llmslots.Acquire(4, 30*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Release()
	// Here: g.Command("codex", "exec", prompt).Run()
	out, err := g.Command("echo", "codex would run here").Output()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("slot %d: %s", g.SlotID(), out)

	// Output: slot 0: codex would run here
}

// Command runs a child that holds the slot for as long as it lives. The
// child learns which slot it holds from LLMSLOTS_INHERITED; a child that
// acquires from the same pool (a helper that limits itself) gets this slot
// back at once instead of waiting on its own parent.
func ExampleGuard_Command() {
	dir, _ := os.MkdirTemp("", "llmslots-example-")
	defer os.RemoveAll(dir)
	pool, _ := llmslots.NewPool(dir)

	g, err := pool.Acquire(1, time.Minute)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Release() // hands the slot over if the child still ran
	cmd := g.Command("sh", "-c", `echo "child holds ${LLMSLOTS_INHERITED%%;*}"`)
	cmd.Stdout = os.Stdout
	if err := cmd.Run(); err != nil { // a failure to hand the slot on is returned here
		fmt.Println(err)
	}

	// Output: child holds fd=3
}

// CommandContext stops the child when the context ends: SIGTERM, then
// SIGKILL after CommandGrace. The slot stays held until the child is gone.
func ExampleGuard_CommandContext() {
	dir, _ := os.MkdirTemp("", "llmslots-example-")
	defer os.RemoveAll(dir)
	pool, _ := llmslots.NewPool(dir)

	g, err := pool.Acquire(1, time.Minute)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = g.CommandContext(ctx, "sleep", "10").Run()
	fmt.Println("stopped:", err)

	// Output: stopped: signal: terminated
}

// A Go CLI tells its user why it waits, as llmslots run does.
func ExampleWithProgress() {
	dir, _ := os.MkdirTemp("", "llmslots-example-")
	defer os.RemoveAll(dir)
	show := func(p llmslots.Progress) {
		fmt.Printf("waiting for a codex slot: %d/%d busy, %d ahead\n", len(p.Holders), p.Max, p.Ahead)
	}
	pool, _ := llmslots.NewPool(dir, llmslots.WithProgress(show))

	held, _ := pool.Acquire(1, 0)
	time.AfterFunc(100*time.Millisecond, func() { held.Release() })
	g, err := pool.Acquire(1, time.Minute) // waits; show is called at once
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Release()
	fmt.Println("got slot", g.SlotID())

	// Output:
	// waiting for a codex slot: 1/1 busy, 0 ahead
	// got slot 0
}

// Eight workers share two slots: never more than two run at once.
func Example_workerPool() {
	dir, _ := os.MkdirTemp("", "llmslots-example-")
	defer os.RemoveAll(dir)
	pool, _ := llmslots.NewPool(dir)

	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, err := pool.Acquire(2, time.Minute)
			if err != nil {
				fmt.Println(err)
				return
			}
			defer g.Release()
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(5 * time.Millisecond) // the work
			running.Add(-1)
		}()
	}
	wg.Wait()
	fmt.Println("peak concurrency:", peak.Load())
	// Output: peak concurrency: 2
}

// Named pools limit separately: four codex calls and two claude calls may
// run at once.
func ExampleNamedPool() {
	dir, _ := os.MkdirTemp("", "llmslots-example-")
	defer os.RemoveAll(dir)
	os.Setenv(llmslots.EnvDir, dir)
	defer os.Unsetenv(llmslots.EnvDir)

	codex, _ := llmslots.NamedPool("codex")
	claude, _ := llmslots.NamedPool("claude", llmslots.WithLabel("summarizer"))
	a, _ := codex.Acquire(4, time.Second)
	defer a.Release()
	b, _ := claude.Acquire(2, time.Second)
	defer b.Release()
	fmt.Println(filepath.Base(codex.Dir()), a.SlotID())
	fmt.Println(filepath.Base(claude.Dir()), b.SlotID())
	// Output:
	// codex 0
	// claude 0
}

// With wait 0, Acquire tries once; a full pool answers ErrBusy at once.
func ExamplePool_Acquire_busy() {
	dir, _ := os.MkdirTemp("", "llmslots-example-")
	defer os.RemoveAll(dir)
	pool, _ := llmslots.NewPool(dir)

	g, _ := pool.Acquire(1, 0)
	defer g.Release()
	_, err := pool.Acquire(1, 0)
	fmt.Println(errors.Is(err, llmslots.ErrBusy))
	// Output: true
}

// AcquireContext waits as long as its context allows.
func ExamplePool_AcquireContext() {
	dir, _ := os.MkdirTemp("", "llmslots-example-")
	defer os.RemoveAll(dir)
	pool, _ := llmslots.NewPool(dir)

	g, _ := pool.Acquire(1, 0)
	defer g.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := pool.AcquireContext(ctx, 1)
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	// Output: true
}

// Status reports each slot as its lock says: held, stale (its holder
// died) or free.
func ExamplePool_ReadStatus() {
	dir, _ := os.MkdirTemp("", "llmslots-example-")
	defer os.RemoveAll(dir)
	pool, _ := llmslots.NewPool(dir, llmslots.WithLabel("nightly review"))

	g, _ := pool.Acquire(3, 0)
	defer g.Release()
	st, _ := pool.ReadStatus(3)
	fmt.Printf("active %d, free %d\n", st.Active, st.Free)
	for _, s := range st.Slots {
		fmt.Printf("slot %d: %s %q mine=%v\n", s.SlotID, s.State, s.Label, s.PID == os.Getpid())
	}
	// Output:
	// active 1, free 2
	// slot 0: held "nightly review" mine=true
	// slot 1: free "" mine=false
	// slot 2: free "" mine=false
}

// ForceRelease refuses to delete a held slot's file.
func ExamplePool_ForceRelease() {
	dir, _ := os.MkdirTemp("", "llmslots-example-")
	defer os.RemoveAll(dir)
	pool, _ := llmslots.NewPool(dir)

	g, _ := pool.Acquire(1, 0)
	err := pool.ForceRelease(g.SlotID())
	fmt.Println(errors.Is(err, llmslots.ErrHeld))
	g.Release()
	fmt.Println(pool.ForceRelease(g.SlotID()))
	// Output:
	// true
	// <nil>
}

// Throttled is called where the 429 is seen: here the child said so on its
// stderr, with a hint. No process of the pool is then granted a slot for
// that long, and the pool's limit is lowered (4 x 0.7: 2 may hold at once).
func ExampleGuard_Throttled() {
	dir, _ := os.MkdirTemp("", "llmslots-example-")
	defer os.RemoveAll(dir)
	pool, _ := llmslots.NewPool(dir)

	g, err := pool.Acquire(4, time.Minute)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Here: g.Command("codex", "exec", prompt), whose stderr says this.
	cmd := g.Command("sh", "-c", `echo "ERROR: 429 Too Many Requests: rate limit reached, try again in 20s" >&2; exit 1`)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	throttled := regexp.MustCompile(`(?im)(?:429|rate.?limit).*?(?:try again in (\d+)s)?$`)
	if m := throttled.FindStringSubmatch(strings.TrimSpace(stderr.String())); err != nil && m != nil {
		secs, _ := strconv.Atoi(m[1]) // no hint: 0, and the pool backs off by itself
		g.Throttled(time.Duration(secs) * time.Second)
	}
	g.Release() // a retry acquires again, behind those already waiting

	st, _ := pool.ReadStatus(4)
	fmt.Printf("limit %d of %d, paused for %v\n", st.Limit, st.Max, time.Until(st.Throttle.PausedUntil).Round(time.Second))
	_, err = pool.Acquire(4, 0)
	fmt.Println("a slot now:", err == nil)
	// Output:
	// limit 2 of 4, paused for 20s
	// a slot now: false
}

// The two lines a codex- or claude-spawning program adds: DetectLimit
// reads what the CLI printed, and ReportLimit shares it with every process
// of the pool. Here the provider's usage cap resets in 2 hours: the pool
// waits until then, its limit kept (a 429 would pause it for the hint and
// lower the limit, as Throttled does).
func ExampleDetectLimit() {
	dir, _ := os.MkdirTemp("", "llmslots-example-")
	defer os.RemoveAll(dir)
	pool, _ := llmslots.NewPool(dir)

	g, err := pool.Acquire(4, time.Minute)
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := os.Create(filepath.Join(dir, "codex.log")) // a file, not a pipe (see Command)
	// Here: g.Command("codex", "exec", prompt), which prints this.
	cmd := g.Command("sh", "-c", `echo "ERROR: You've hit your usage limit. Upgrade to Pro or try again in 2 hours."; exit 1`)
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	printed, _ := os.ReadFile(out.Name())
	if l, ok := llmslots.DetectLimit(printed); ok {
		g.ReportLimit(l)
		fmt.Printf("%v (%v), resets in %v\n", l.Kind, err, time.Until(l.ResetAt).Round(time.Minute))
	}
	g.Release()

	st, _ := pool.ReadStatus(4)
	fmt.Printf("limit %d of %d, paused for %v\n", st.Limit, st.Max, time.Until(st.Throttle.PausedUntil).Round(time.Minute))
	// Output:
	// usage limit (exit status 1), resets in 2h0m0s
	// limit 4 of 4, paused for 2h0m0s
}
