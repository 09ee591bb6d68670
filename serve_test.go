//go:build linux

package llmslots

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/watch"
	"golang.org/x/sys/unix"
)

// servingOn skips a test of serving where releases cannot serve: without
// spares or file events every release deletes its slot file.
func servingOn(t *testing.T) {
	t.Helper()
	if sparesOff() {
		t.Skip("releases serve the line only with spares and file events")
	}
}

// servedFromALineOfTwo releases slot 0 of a pool of 1 while two helpers
// wait for it, in that order; the release serves the first.
func servedFromALineOfTwo(t *testing.T) (p *Pool, first, second *helper) {
	t.Helper()
	servingOn(t)
	p = newTestPool(t)
	g := mustAcquire(t, p, 1, 0)
	first = startHelper(t, "hold", p.Dir(), 1)
	waitForWaiters(t, p, 1, 1)
	second = startHelper(t, "hold", p.Dir(), 1)
	waitForWaiters(t, p, 1, 2)
	if err := g.Release(); err != nil {
		t.Fatal(err)
	}
	return p, first, second
}

// A release with waiters hands the slot to the first of them: the slot's
// file is that waiter's as Release returns, before the waiter even runs,
// so no other process can take it between; the waiter behind stays in
// line.
func TestReleaseServesTheFirstWaiter(t *testing.T) {
	p, first, second := servedFromALineOfTwo(t)
	rec, err := readRecord(slotPath(p.Dir(), 0))
	if err != nil {
		t.Fatalf("slot 0 as Release returned: %v; want the first waiter's file", err)
	}
	if rec.PID != first.pid() {
		t.Fatalf("slot 0 as Release returned is pid %d's; want the first waiter's, %d", rec.PID, first.pid())
	}
	if id := first.held(); id != 0 {
		t.Fatalf("first waiter took slot %d", id)
	}
	st := waitForWaiters(t, p, 1, 1)
	if st.Waiting[0].PID != second.pid() {
		t.Fatalf("waiting: %+v; want the second waiter", st.Waiting)
	}
	first.stdin.Close()
	if id := second.held(); id != 0 {
		t.Fatalf("second waiter took slot %d", id)
	}
	second.stdin.Close()
	settledQueue(t, p)
}

// A waiter whose wait ends (its deadline) just as a release renames its
// ticket into the slot does not keep the slot: it passes it on to the next
// waiter, and holds nothing.
func TestServedAsTheWaitEndsPassesTheSlotOn(t *testing.T) {
	servingOn(t)
	for _, behind := range []bool{false, true} {
		name := "nobody_behind"
		if behind {
			name = "a_waiter_behind"
		}
		t.Run(name, func(t *testing.T) {
			p := newTestPool(t)
			g := mustAcquire(t, p, 1, 0)
			served := false
			testHookWaitEnded = func() {
				testHookWaitEnded = nil
				if err := g.Release(); err != nil {
					t.Error(err)
				}
				rec, err := readRecord(slotPath(p.Dir(), 0))
				served = err == nil && rec.PID == self().PID
			}
			defer func() { testHookWaitEnded = nil }()
			var next *helper
			done := make(chan error, 1)
			go func() {
				_, err := p.Acquire(1, 300*time.Millisecond)
				done <- err
			}()
			waitForWaiters(t, p, 1, 1)
			if behind {
				next = startHelper(t, "hold", p.Dir(), 1)
				waitForWaiters(t, p, 1, 2)
			}
			if err := <-done; !errors.Is(err, ErrBusy) {
				t.Fatalf("the wait that ended: %v; want ErrBusy", err)
			}
			if !served {
				t.Fatal("the release at the wait's end did not serve it: nothing was tested")
			}
			if behind {
				if id := next.held(); id != 0 {
					t.Fatalf("the waiter behind took slot %d", id)
				}
				next.stdin.Close()
				if l := next.line(); l != "released" {
					t.Fatalf("waiter behind: %q", l)
				}
			}
			g2, err := p.Acquire(1, 0)
			if err != nil {
				t.Fatalf("the slot was kept by the wait that ended: %v", err)
			}
			g2.Release()
			settledQueue(t, p)
		})
	}
}

// A waiter killed just after a release served it leaves its slot to the
// line as any dead holder does: the next waiter reclaims it at once.
func TestServedWaiterKilledFreesTheSlot(t *testing.T) {
	_, first, second := servedFromALineOfTwo(t)
	first.kill()
	start := time.Now()
	if id := second.held(); id != 0 {
		t.Fatalf("second waiter took slot %d", id)
	}
	t.Logf("the next waiter took the slot %v after the served waiter was killed", time.Since(start))
	if time.Since(start) > 2*time.Second {
		t.Errorf("the slot of a served waiter killed stayed idle %v", time.Since(start))
	}
	second.stdin.Close()
}

// Ticket names: only a name with a well-formed suffix says its waiter can
// be served, and with which max.
func TestServedTicketNames(t *testing.T) {
	base := ticketName(1234)
	for _, c := range []struct {
		name string
		max  int
	}{
		{ticketPrefix + base + servedSuffix(4, "4026531836"), 4},
		{ticketPrefix + base + servedSuffix(1024, "1"), 1024},
		{ticketPrefix + base, 0},
		{ticketPrefix + base + servedSuffix(4, ""), 0},
		{ticketPrefix + base + "-s", 0},
		{ticketPrefix + base + "-s4", 0},
		{ticketPrefix + base + "-s0-1", 0},
		{ticketPrefix + base + "-s-3-1", 0},
		{ticketPrefix + base + "-sx-1", 0},
		{ticketPrefix + "short-s4-1", 0},
		{"", 0},
	} {
		if got, _ := servedMax(c.name); got != c.max {
			t.Errorf("servedMax(%q) = %d; want %d", c.name, got, c.max)
		}
	}
	if pid := ticketPID(ticketPrefix + base + servedSuffix(4, "1")); pid != self().PID {
		t.Errorf("ticketPID = %d; want %d", pid, self().PID)
	}
}

// A waiter that becomes first in line because the one ahead was served is
// not woken for it, and so does not look at the slots. If it may use
// slots the served one could not (a larger max), the release wakes it:
// here slot 1 is free all along, the first waiter (max 1) cannot take it,
// and the one behind (max 2) must take it as soon as the first is
// served, not at the stall rule's second.
func TestServingWakesAWaiterWithALargerMax(t *testing.T) {
	servingOn(t)
	p := newTestPool(t)
	g := mustAcquire(t, p, 1, 0)
	first := startHelper(t, "hold", p.Dir(), 1)
	waitForWaiters(t, p, 1, 1)
	second := startHelper(t, "hold", p.Dir(), 2)
	waitForWaiters(t, p, 2, 2)
	start := time.Now()
	if err := g.Release(); err != nil {
		t.Fatal(err)
	}
	if id := first.held(); id != 0 {
		t.Fatalf("first waiter took slot %d", id)
	}
	if id := second.held(); id != 1 {
		t.Fatalf("second waiter took slot %d", id)
	}
	took := time.Since(start)
	t.Logf("the waiter with the larger max took the free slot %v after the first was served", took)
	if took >= stallAfter*3/4 {
		t.Errorf("it took %v: it was not woken, only the stall rule (%v) let it in", took, stallAfter)
	}
	first.stdin.Close()
	second.stdin.Close()
}

// silentHeadSeesARelease lines up b and c (servable) and then x behind
// three held slots; serving b and c makes x first in line without waking
// it. The release of the last slot, which cannot serve x, must still let
// x in at once (not at its deadline).
func silentHeadSeesARelease(t *testing.T, p *Pool, x func() *helper) {
	t.Helper()
	g0, g1, g2 := mustAcquire(t, p, 3, 0), mustAcquire(t, p, 3, 0), mustAcquire(t, p, 3, 0)
	b := startHelper(t, "hold", p.Dir(), 3)
	waitForWaiters(t, p, 3, 1)
	c := startHelper(t, "hold", p.Dir(), 3)
	waitForWaiters(t, p, 3, 2)
	last := x()
	waitForWaiters(t, p, 3, 3)
	g0.Release()
	if id := b.held(); id != g0.SlotID() {
		t.Fatalf("b took slot %d", id)
	}
	g1.Release()
	if id := c.held(); id != g1.SlotID() {
		t.Fatalf("c took slot %d", id)
	}
	start := time.Now()
	g2.Release()
	if id := last.held(); id != g2.SlotID() {
		t.Fatalf("x took slot %d", id)
	}
	t.Logf("x took the slot %v after its release", time.Since(start))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("slot %d stayed free %v while x, first in line, waited", g2.SlotID(), took)
	}
}

// A waiter with a ticket of its own (no spare) behind served tickets: it
// watches the ticket ahead for its rename, as nothing else would tell it
// it is first. (Found by review: it waited until its deadline.)
func TestTicketOfItsOwnBehindServedTickets(t *testing.T) {
	servingOn(t)
	p := newTestPool(t)
	silentHeadSeesARelease(t, p, func() *helper { return startHelper(t, "hold", p.Dir(), 3, noSparesEnv+"=1") })
}

// A servable waiter of another pid namespace (a container sharing the
// pool) is not served from this one, but poked. (Found by review.)
func TestWaiterOfAnotherPidNamespaceIsPoked(t *testing.T) {
	servingOn(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root for CLONE_NEWPID")
	}
	p := newTestPool(t)
	silentHeadSeesARelease(t, p, func() *helper {
		cmd := helperCmd(os.Args[0], "hold", p.Dir(), 3)
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
		return launchHelper(t, cmd)
	})
}

func init() {
	// take a slot and say "held N T" (T: CLOCK_MONOTONIC ns as Acquire
	// returned), then hold it until stdin closes; LEAVE_DELAY delays
	// leaving the line once served, AHEAD_WAIT sets aheadLeaveWait
	helperModes["hold-timed"] = holdTimedHelper
}

func holdTimedHelper() int {
	if d, err := time.ParseDuration(os.Getenv("LEAVE_DELAY")); err == nil {
		testHookLeaveServed = func() { time.Sleep(d) }
	}
	if d, err := time.ParseDuration(os.Getenv("AHEAD_WAIT")); err == nil {
		aheadLeaveWait = d
	}
	return hold("hold-timed", func(g *Guard) string {
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		return fmt.Sprint("held ", g.SlotID(), " ", ts.Nano())
	})
}

// heldAt waits for a "hold-timed" helper's slot and returns when its
// Acquire returned.
func (h *helper) heldAt() time.Duration {
	h.t.Helper()
	var id int
	var ns int64
	if l := h.line(); func() bool { _, err := fmt.Sscanf(l, "held %d %d", &id, &ns); return err != nil }() {
		h.t.Fatalf("helper %d: want \"held N T\", got %q", h.pid(), l)
	}
	return time.Duration(ns)
}

// Two releases an instant apart serve the first two waiters in order, and
// their Acquires return in that order too: the second waits for the first
// to leave the line, here slowed by 50 ms once served. Without that wait
// the second returns about 50 ms before the first (checked).
func TestServedWaitersReturnInTheOrderServed(t *testing.T) {
	servingOn(t)
	p := newTestPool(t)
	g0, g1 := mustAcquire(t, p, 2, 0), mustAcquire(t, p, 2, 0)
	first := startHelper(t, "hold-timed", p.Dir(), 2, "LEAVE_DELAY=50ms")
	waitForWaiters(t, p, 2, 1)
	second := startHelper(t, "hold-timed", p.Dir(), 2, "AHEAD_WAIT=5s")
	waitForWaiters(t, p, 2, 2)
	// Released before the second has looked at the line, the first slot
	// would leave it first in line, with nobody ahead to wait for: wait
	// for its look, which opens the first's ticket.
	firstsTicket := fmt.Sprintf("-%010d-", first.pid())
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", second.pid()))
		if slices.ContainsFunc(fds, func(fd string) bool {
			to, _ := os.Readlink(fd)
			return strings.Contains(to, queueDirName) && strings.Contains(to, firstsTicket)
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second waiter never opened the first's ticket")
		}
	}
	if err := g0.Release(); err != nil {
		t.Fatal(err)
	}
	if err := g1.Release(); err != nil {
		t.Fatal(err)
	}
	a, b := first.heldAt(), second.heldAt()
	t.Logf("second returned %v after the first", b-a)
	// The second wakes as the first drops its in-line lock, a few
	// microseconds before the first's Acquire returns: either may print
	// first, but not 50 ms apart.
	if b < a-5*time.Millisecond {
		t.Fatalf("the second waiter returned %v before the first", a-b)
	}
	first.stdin.Close()
	second.stdin.Close()
	settledQueue(t, p)
}

// A waiter served while it sets the watch of its own ticket (inside
// inotify_add_watch: the path looked up, the watch not yet attached, so
// the rename raises no event, yet the watch is set, on the file now
// named as the slot) still finds its slot: the look after Keep checks the
// ticket whatever the watch says. The test widens the kernel's window by
// setting the watch through a descriptor opened before the release.
func TestServedWhileItsOwnWatchIsSet(t *testing.T) {
	servingOn(t)
	p := newTestPool(t)
	g := mustAcquire(t, p, 1, 0)
	paused, resume := make(chan struct{}), make(chan struct{})
	watch.TestOwnWatchPath = func(own string) (string, func()) {
		watch.TestOwnWatchPath = nil
		fd, err := unix.Open(own, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		close(paused)
		<-resume
		if err != nil {
			return own, func() {}
		}
		return fmt.Sprintf("/proc/self/fd/%d", fd), func() { unix.Close(fd) }
	}
	t.Cleanup(func() { watch.TestOwnWatchPath = nil })
	got := make(chan *Guard, 1)
	go func() {
		w, err := p.Acquire(1, 3*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- w
	}()
	<-paused
	if err := g.Release(); err != nil { // serves the waiter: its ticket becomes slot-0
		t.Fatal(err)
	}
	if rec, err := readRecord(slotPath(p.Dir(), 0)); err != nil || rec.PID != os.Getpid() {
		t.Fatalf("slot 0 after the release: %+v, %v; want this process's spare", rec, err)
	}
	close(resume)
	start := time.Now()
	select {
	case w := <-got:
		if w == nil {
			t.Fatal("no slot")
		}
		took := time.Since(start)
		t.Logf("served waiter returned %v after its watch was set", took)
		w.Release()
		if took > time.Second {
			t.Fatalf("the served waiter found its slot only as its wait ended (%v)", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire did not return")
	}
}

// A waiter that takes a slot itself (here by the stall rule, past a head
// that asked for a smaller max and cannot use the slot freed) was not
// served: it does not wait for the head, which is still in line, and
// leaves no goroutine blocked on the head's in-line lock. Each such take
// used to leave one, and a thread with it, until the head left the line.
func TestSlotTakenPastTheHeadWaitsForNobody(t *testing.T) {
	servingOn(t)
	p := newTestPool(t)
	g0, g1 := mustAcquire(t, p, 2, 0), mustAcquire(t, p, 2, 0)
	if g1.SlotID() != 1 {
		g0, g1 = g1, g0
	}
	head := startHelper(t, "hold", p.Dir(), 1) // slot 0 only
	waitForWaiters(t, p, 2, 1)
	held := g1
	for range 2 {
		done := make(chan *Guard, 1)
		go func() {
			g, err := p.Acquire(2, 10*time.Second)
			if err != nil {
				t.Error(err)
			}
			done <- g
		}()
		waitForWaiters(t, p, 2, 2)
		held.Release() // slot 1: the head cannot use it; the second takes it after stallAfter
		if held = <-done; held == nil {
			t.FailNow()
		}
		if aheadWaiting.Load() {
			t.Fatal("a goroutine is left blocked on the head's in-line lock")
		}
	}
	g0.Release()
	head.held()
	held.Release()
	head.stdin.Close()
	settledQueue(t, p)
}
