package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmslots/llmslots"
)

// liveLineEvery is how often the live waiting line is redrawn.
const liveLineEvery = 250 * time.Millisecond

// acquire takes a slot of pool, waiting up to wait (negative: until one
// frees or ctx ends). While it waits it tells the user on stderr: a line
// redrawn in place on a terminal, else a single line (io.Discard: nothing). No slot in time is an
// error matching llmslots.ErrBusy that names the holders.
func acquire(ctx context.Context, pool *llmslots.Pool, max int, wait time.Duration, stderr io.Writer) (*llmslots.Guard, error) {
	g, err := pool.Acquire(max, 0)
	if err == nil || !errors.Is(err, llmslots.ErrBusy) || wait == 0 {
		return g, err
	}
	start := time.Now()
	waitCtx := ctx
	if wait > 0 {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	stopShowing := showWaiting(pool, max, wait, start, stderr)
	g, err = pool.AcquireContext(waitCtx, max)
	stopShowing()
	switch {
	case err == nil:
		return g, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	}
	var busy *llmslots.BusyError
	if errors.As(err, &busy) && busy.Err != nil {
		// The wait the user gave, not the context's error: it ran out.
		busy.Wait, busy.Err = wait, nil
	}
	return nil, err
}

// showWaiting starts telling the user that run waits; the returned
// function stops it and clears the live line.
func showWaiting(pool *llmslots.Pool, max int, wait time.Duration, start time.Time, stderr io.Writer) (stop func()) {
	if stderr == io.Discard {
		return func() {}
	}
	f, ok := stderr.(*os.File)
	if !ok || !isTerminal(f) {
		fmt.Fprintln(stderr, waitingLine(pool, max, wait, 0))
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(liveLineEvery)
		defer tick.Stop()
		for {
			// \r and "erase to end of line": one line, redrawn in place.
			fmt.Fprint(stderr, "\r\x1b[K"+waitingLine(pool, max, wait, time.Since(start)))
			select {
			case <-done:
				fmt.Fprint(stderr, "\r\x1b[K")
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// waitingLine describes the wait: who holds the slots, how many wait
// ahead (when known) and for how long this one has waited.
func waitingLine(pool *llmslots.Pool, max int, wait, waited time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "llmslots: waiting for a slot of %s", pool.Dir())
	if st, err := pool.ReadStatus(max); err == nil {
		fmt.Fprintf(&b, ": %d/%d busy", st.Active, max)
		if len(st.PIDs) > 0 {
			b.WriteString(" (pids " + joinInts(st.PIDs) + ")")
		}
		if n, known := waitersAhead(st); known {
			fmt.Fprintf(&b, ", %d waiting ahead", n)
		}
	}
	if waited > 0 {
		fmt.Fprintf(&b, ", waited %.1fs", waited.Seconds())
	}
	if wait > 0 {
		fmt.Fprintf(&b, " (gives up after %v)", wait)
	}
	return b.String()
}

// waitersAhead counts the processes that wait ahead of this one: all
// waiters until this process has its own place in the queue.
func waitersAhead(st llmslots.Status) (n int, known bool) {
	for _, w := range st.Waiting {
		if w.PID == os.Getpid() {
			return w.Position - 1, true
		}
	}
	return len(st.Waiting), true
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// shorten cuts s to at most n runes, marking the cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
