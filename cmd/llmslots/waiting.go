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
	"github.com/llmslots/llmslots/internal/cli"
)

// liveLineEvery is how often the live waiting line is redrawn.
const liveLineEvery = 250 * time.Millisecond

// acquire takes a slot of pool, waiting up to wait (negative: until one
// frees or ctx ends). While it waits, show tells the user on stderr (see
// waitDisplay). No slot in time is an error matching llmslots.ErrBusy that
// names the holders.
func acquire(ctx context.Context, pool *llmslots.Pool, max int, wait time.Duration, show *waitDisplay) (*llmslots.Guard, error) {
	waitCtx := ctx
	if wait >= 0 {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	stopShowing := show.start()
	g, err := pool.AcquireContext(waitCtx, max)
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

// A waitDisplay tells the user that run waits, from the progress the
// library reports (llmslots.WithProgress): on a terminal, one line redrawn
// in place and cut to the terminal's width; elsewhere a single line when
// the wait starts; with io.Discard, nothing.
type waitDisplay struct {
	w     io.Writer
	max   int
	wait  time.Duration
	live  bool // w is a terminal
	width func() int

	mu      sync.Mutex
	last    *llmslots.Progress
	started time.Time
	printed bool // the single line was written
}

func newWaitDisplay(w io.Writer, max int, wait time.Duration) *waitDisplay {
	d := &waitDisplay{w: w, max: max, wait: wait, width: func() int { return 0 }}
	if f, ok := w.(*os.File); ok && cli.IsTerminal(f) {
		d.live = true
		d.width = func() int { return terminalWidth(f) }
	}
	return d
}

// update is the pool's progress function.
func (d *waitDisplay) update(p llmslots.Progress) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// Off a terminal: one line when the wait starts, as documented. A line
	// more at each start and end of a pause made up to three per waiter,
	// and a log that dozens of waiters share is read line by line.
	d.last = &p
	if !d.live && !d.printed && d.w != io.Discard {
		d.printed = true
		fmt.Fprintln(d.w, waitingLine(p, d.wait))
	}
}

// start begins redrawing the live line; the returned function stops it and
// clears the line.
func (d *waitDisplay) start() (stop func()) {
	d.mu.Lock()
	d.started = time.Now()
	d.mu.Unlock()
	if !d.live {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(liveLineEvery)
		defer tick.Stop()
		drawn := false
		for {
			d.mu.Lock()
			if d.last != nil {
				p := *d.last
				p.Waited = time.Since(d.started)
				// \r and "erase to end of line": one line, redrawn in place.
				fmt.Fprint(d.w, "\r\x1b[K"+cut(waitingLine(p, d.wait), d.width()))
				drawn = true
			}
			d.mu.Unlock()
			select {
			case <-done:
				if drawn {
					fmt.Fprint(d.w, "\r\x1b[K")
				}
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
// ahead and for how long this one has waited.
func waitingLine(p llmslots.Progress, wait time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "llmslots: waiting for a slot of %s: %d/%d busy", printable(p.Dir), len(p.Holders), p.Max)
	if len(p.Holders) > 0 {
		var who []string
		for _, h := range p.Holders {
			if h.Self {
				who = append(who, strconv.Itoa(h.PID)+" (this process)")
			} else {
				who = append(who, strconv.Itoa(h.PID))
			}
		}
		b.WriteString(" (pids " + strings.Join(who, ", ") + ")")
	}
	if p.Limit > 0 && p.Limit < p.Max {
		fmt.Fprintf(&b, ", limit lowered to %d (throttled)", p.Limit)
	}
	if !p.PausedUntil.IsZero() {
		fmt.Fprintf(&b, ", paused until %s", clock(p.PausedUntil))
		if p.Throttle != nil && p.Throttle.LastReport != nil {
			r := p.Throttle.LastReport
			if r.Kind == "pause" {
				b.WriteString(" (paused by hand")
			} else if r.Kind == "usage" {
				b.WriteString(" (a usage limit reported")
			} else {
				b.WriteString(" (throttled")
			}
			fmt.Fprintf(&b, " by pid %d)", r.PID)
		}
	}
	fmt.Fprintf(&b, ", %d waiting ahead", p.Ahead)
	if p.Waited > 0 {
		fmt.Fprintf(&b, ", waited %.1fs", p.Waited.Seconds())
	}
	if wait > 0 {
		fmt.Fprintf(&b, " (gives up after %v)", wait)
	}
	return b.String()
}

// cut shortens s to fewer than width terminal columns (see columns), if
// width is known (> 1), marking the cut: a redrawn line never reaches the
// last column, so it never wraps into a new row.
func cut(s string, width int) string {
	if width <= 1 {
		return s
	}
	room, used := width-1, 0
	for _, r := range s {
		used += columns(r)
	}
	if used <= room {
		return s
	}
	var b strings.Builder
	used = 0
	for _, r := range s {
		w := columns(r)
		if used+w > room-1 { // one column left for the mark
			break
		}
		b.WriteRune(r)
		used += w
	}
	return b.String() + "…"
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
