//go:build unix

package llmslots

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/slotfile"
)

// The pool directory, or its queue directory, removed under a pool in
// use: the next acquirer makes it again, and nobody hangs or over-grants.

func TestDirectoryRemovedWhileInUseIsRecreated(t *testing.T) {
	p := newTestPool(t)
	g := mustAcquire(t, p, 1, 0)
	g.Release()
	if err := os.RemoveAll(p.Dir()); err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, p, 1, 0)
}

// The queue directory deleted under a pool in use is made again by the
// next waiter, which still gets the slot.
func TestQueueDirectoryRemovedIsMadeAgain(t *testing.T) {
	p := newTestPool(t)
	holder := mustAcquire(t, p, 1, 0)
	if err := os.RemoveAll(filepath.Join(p.Dir(), slotfile.QueueDir)); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		g, err := p.Acquire(1, 10*time.Second)
		if err == nil {
			g.Release()
		}
		got <- err
	}()
	waitForWaiters(t, p, 1, 1)
	holder.Release()
	if err := <-got; err != nil {
		t.Fatalf("waiter after the queue was deleted: %v", err)
	}
}

// The pool directory, or its queue directory, removed while processes
// wait in line: every waiter ends within its wait, with slots taken one at
// a time from the new directory, or with an error; none hangs or crashes.
// The holder whose file went with the directory keeps running, as the
// README says (What it does not guarantee), and its release does not
// touch the new holders' files.
func TestDirectoryRemovedWhileWaitersWait(t *testing.T) {
	linuxOnly(t)
	for _, what := range []string{"pool", "queue"} {
		t.Run(what, func(t *testing.T) {
			p := newTestPool(t)
			holder := startHelper(t, "hold", p.Dir(), 1)
			holder.held()
			var waiters []*helper
			for i := range 3 {
				waiters = append(waiters, startHelper(t, "cycle", p.Dir(), 1, "HELPER_CYCLES=2"))
				waitForWaiters(t, p, 1, i+1)
			}
			switch what {
			case "pool":
				// Rename, then delete: the pool path is gone at one instant.
				gone := p.Dir() + ".gone"
				if err := os.Rename(p.Dir(), gone); err != nil {
					t.Fatal(err)
				}
				if err := os.RemoveAll(gone); err != nil {
					t.Fatal(err)
				}
			case "queue":
				// A waiter woken by its ticket's removal may make the
				// directory's waiters file again before the directory goes
				// (ENOTEMPTY): remove again, as a user would.
				var err error
				for range 100 {
					if err = os.RemoveAll(filepath.Join(p.Dir(), slotfile.QueueDir)); err == nil {
						break
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				// The holder leaves as usual, so the waiters have a slot.
				holder.stdin.Close()
				if l := holder.line(); l != "released" {
					t.Fatalf("holder: %q", l)
				}
			}
			ivs, errs := collectCycles(t, waiters)
			for _, e := range errs {
				t.Errorf("a waiter said %q", e)
			}
			if len(ivs)+len(errs) == 0 {
				t.Fatal("no waiter reported anything")
			}
			checkNoOverlap(t, ivs, 1)
			if what == "pool" {
				holder.stdin.Close()
				if l := holder.line(); l != "released" {
					t.Fatalf("holder whose file was removed: %q", l)
				}
			}
			// Nothing leaked: the slot is free for a fresh acquirer.
			if g, err := p.Acquire(1, 0); err != nil {
				t.Fatalf("after the waiters: %v", err)
			} else {
				g.Release()
			}
			t.Logf("%s directory removed: %d holding intervals, %d errors", what, len(ivs), len(errs))
		})
	}
}

// interval is one holding interval a cycle helper reported.
type interval struct {
	pid        int
	slot       int
	start, end int64
}

// collectCycles reads every line of cycle helpers until they exit and
// returns their intervals and error lines.
func collectCycles(t *testing.T, hs []*helper) ([]interval, []string) {
	t.Helper()
	var ivs []interval
	var errs []string
	type line struct {
		pid  int
		text string
	}
	lines := make(chan line)
	for _, h := range hs {
		go func() {
			for h.out.Scan() {
				lines <- line{h.pid(), h.out.Text()}
			}
			lines <- line{h.pid(), ""}
		}()
	}
	timeout := time.After(60 * time.Second)
	for done := 0; done < len(hs); {
		select {
		case l := <-lines:
			f := strings.Fields(l.text)
			switch {
			case len(f) == 0:
				done++
			case f[0] == "interval" && len(f) == 4:
				var iv interval
				iv.pid = l.pid
				iv.slot, _ = strconv.Atoi(f[1])
				iv.start, _ = strconv.ParseInt(f[2], 10, 64)
				iv.end, _ = strconv.ParseInt(f[3], 10, 64)
				ivs = append(ivs, iv)
			default:
				errs = append(errs, l.text)
			}
		case <-timeout:
			t.Fatal("waiters still running after 60s: hung")
		}
	}
	return ivs, errs
}

// checkNoOverlap fails t if two intervals on one slot overlap, or more
// than max overlap at all.
func checkNoOverlap(t *testing.T, ivs []interval, max int) {
	t.Helper()
	for i, a := range ivs {
		overlapping := 1
		for j, b := range ivs {
			if i != j && a.start < b.end && b.start < a.end {
				overlapping++
				if a.slot == b.slot {
					t.Errorf("pids %d and %d both held slot %d", a.pid, b.pid, a.slot)
				}
			}
		}
		if overlapping > max {
			t.Errorf("%d holders at once around pid %d's interval; max %d", overlapping, a.pid, max)
		}
	}
}
