//go:build unix

package llmslots

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/slotfile"
)

// A guard nobody references must keep its slot: if the package let its
// *os.File become unreachable, the runtime would close it at a GC and the
// lock would go with it.
func TestDroppedGuardSurvivesGC(t *testing.T) {
	p := newTestPool(t)
	func() {
		if _, err := p.Acquire(1, 0); err != nil {
			t.Fatal(err)
		}
	}()
	// Run GC until two cleanup rounds have certainly passed: a sentinel's
	// cleanup runs only after the cycle that found it unreachable.
	for range 2 {
		done := make(chan struct{})
		sentinel := new([16]byte)
		runtime.AddCleanup(sentinel, func(ch chan struct{}) { close(ch) }, done)
		sentinel = nil
		for {
			runtime.GC()
			select {
			case <-done:
			case <-time.After(10 * time.Millisecond):
				continue
			}
			break
		}
	}
	st, err := p.ReadStatus(1)
	if err != nil {
		t.Fatal(err)
	}
	if st.Slots[0].State != StateHeld {
		t.Fatalf("dropped guard's slot is %s after GC; want held", st.Slots[0].State)
	}
	heldGuards.Lock()
	g := heldGuards.byPath[p.SlotPath(0)]
	heldGuards.Unlock()
	g.Release()
}

// The unlink race, made to happen: between this acquirer's create and its
// lock, a prober takes the fresh, unlocked file for a dead holder's and
// deletes it, and a third process may create and lock a new one. Either
// way exactly one holder may result. (A prober leaves a young empty file
// alone, so the creator is made to look stalled past slotfile.FreshAge, as a
// SIGSTOPped one would be.)
func TestUnlinkRaceNeverGivesTwoHolders(t *testing.T) {
	for _, thirdTakes := range []bool{true, false} {
		t.Run(fmt.Sprintf("third_takes=%v", thirdTakes), func(t *testing.T) {
			p := newTestPool(t)
			var third *Guard
			slotfile.TestHooks.BeforeLock = func(path string) {
				slotfile.TestHooks.BeforeLock = nil // only the racing acquirer's first create
				old := time.Now().Add(-2 * slotfile.FreshAge)
				os.Chtimes(path, old, old)
				res, err := slotfile.Probe(path, slotfile.Remove)
				if err != nil || !res.Removed {
					t.Errorf("prober: %+v %v; want the unlocked file removed", res, err)
				}
				if thirdTakes {
					// Another acquirer, through its own file description.
					if third, _, err = p.tryAcquire(1); third == nil || err != nil {
						t.Errorf("third party: %v %v", third, err)
					}
				}
			}
			defer func() { slotfile.TestHooks.BeforeLock = nil }()
			g, _, err := p.tryAcquire(1)
			if thirdTakes {
				defer third.Release()
				if g != nil || err != nil {
					t.Fatalf("racing acquirer got slot %v (err %v) while the third party holds it", g, err)
				}
				if !filelock.StillAt(third.Path(), third.info) {
					t.Fatal("third party's slot file was disturbed")
				}
				return
			}
			if g == nil || err != nil {
				t.Fatalf("racing acquirer: %v, %v; want the slot, which is free", g, err)
			}
			defer g.Release()
			if !filelock.StillAt(g.Path(), g.info) {
				t.Fatal("racing acquirer holds a file that is no longer the slot")
			}
		})
	}
}

// After someone deletes a held slot's file behind the protocol's back (as
// the reference's forced release did) and a new holder takes the slot, the
// old holder's Release must not delete the new holder's file.
func TestReleaseLeavesAReplacementFileAlone(t *testing.T) {
	p := newTestPool(t)
	old := mustAcquire(t, p, 1, 0)
	if err := os.Remove(old.Path()); err != nil {
		t.Fatal(err)
	}
	unregisterGuard(old) // so this process does not skip the slot
	heir := mustAcquire(t, p, 1, 0)
	registerGuard(old)
	if err := old.Release(); err != nil {
		t.Fatal(err)
	}
	if !filelock.StillAt(heir.Path(), heir.info) {
		t.Fatal("old holder's Release deleted the new holder's file")
	}
	st, _ := p.ReadStatus(1)
	if st.Slots[0].State != StateHeld {
		t.Fatalf("slot is %s; want held by the heir", st.Slots[0].State)
	}
}

func TestOtherProcessHoldsAndReleases(t *testing.T) {
	p := newTestPool(t)
	h := startHelper(t, "hold", p.Dir(), 1)
	if id := h.held(); id != 0 {
		t.Fatalf("helper took slot %d", id)
	}
	if _, err := p.Acquire(1, 0); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), strconv.Itoa(h.pid())) {
		t.Fatalf("Acquire while helper %d holds: %v", h.pid(), err)
	}
	h.stdin.Close()
	if l := h.line(); l != "released" {
		t.Fatalf("helper said %q", l)
	}
	mustAcquire(t, p, 1, 0)
}

// SIGKILL a holder: its slot comes back to the next acquirer at once, with
// no cleanup call.
func TestKilledHolderSlotIsReclaimedAtOnce(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d_of_%d_killed", n, n), func(t *testing.T) {
			var logs strings.Builder
			p := newTestPool(t, WithLogger(debugLogger(&logs)))
			var hs []*helper
			for range n {
				h := startHelper(t, "hold", p.Dir(), n)
				h.held()
				hs = append(hs, h)
			}
			for _, h := range hs {
				h.kill()
			}
			for i := range n {
				start := time.Now()
				g, err := p.Acquire(n, 2*time.Second)
				took := time.Since(start)
				if err != nil {
					t.Fatalf("acquire %d after the kills: %v", i, err)
				}
				defer g.Release()
				t.Logf("slot %d reclaimed from a SIGKILLed holder in %v", g.SlotID(), took)
				if took > 500*time.Millisecond {
					t.Errorf("reclaim took %v; it should take one attempt", took)
				}
			}
			for _, h := range hs {
				if !strings.Contains(logs.String(), "dead_pid="+strconv.Itoa(h.pid())) {
					t.Errorf("no debug log names dead pid %d:\n%s", h.pid(), logs.String())
				}
			}
		})
	}
}

// Several processes cycle through a pool of 2; their own logs of when
// they held a slot (taken after acquiring, before releasing, on the
// machine-wide monotonic clock) must never show more than 2 at once, or
// one slot twice.
func TestProcessesNeverExceedMax(t *testing.T) {
	const procs, cycles, limit = 6, 40, 2
	p := newTestPool(t)
	var hs []*helper
	for range procs {
		hs = append(hs, startHelper(t, "cycle", p.Dir(), limit, "HELPER_CYCLES="+strconv.Itoa(cycles)))
	}
	type event struct {
		at    int64
		delta int
		slot  int
	}
	var events []event
	for _, h := range hs {
		n := 0
		for h.out.Scan() {
			var slot int
			var start, end int64
			if _, err := fmt.Sscanf(h.out.Text(), "interval %d %d %d", &slot, &start, &end); err != nil {
				t.Fatalf("helper %d: %q", h.pid(), h.out.Text())
			}
			events = append(events, event{start, +1, slot}, event{end, -1, slot})
			n++
		}
		if err := h.cmd.Wait(); err != nil || n != cycles {
			t.Fatalf("helper %d: %d of %d cycles, exit %v", h.pid(), n, cycles, err)
		}
	}
	sort.Slice(events, func(i, j int) bool {
		if events[i].at != events[j].at {
			return events[i].at < events[j].at
		}
		return events[i].delta < events[j].delta // ends before starts at a tie
	})
	inUse, peak := 0, 0
	bySlot := map[int]int{}
	for _, e := range events {
		inUse += e.delta
		bySlot[e.slot] += e.delta
		peak = max(peak, inUse)
		if inUse > limit || bySlot[e.slot] > 1 {
			t.Fatalf("at %d: %d holders, slot %d held %d times", e.at, inUse, e.slot, bySlot[e.slot])
		}
	}
	t.Logf("%d processes x %d cycles on max %d: peak %d holders, never more", procs, cycles, limit, peak)
	if peak != limit {
		t.Logf("note: peak %d below max %d", peak, limit)
	}
}
