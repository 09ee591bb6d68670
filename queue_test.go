//go:build unix

package llmslots

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/clock"
	"github.com/llmslots/llmslots/internal/slotfile"
)

// waitForWaiters polls status until n processes wait, in order.
func waitForWaiters(t *testing.T, p *Pool, max, n int) Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := p.ReadStatus(max)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Waiting) == n {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiting, want %d: %+v", len(st.Waiting), n, st.Waiting)
		}
		time.Sleep(time.Millisecond)
	}
}

// settledQueue waits until the queue directory holds only the waiters
// file (a served waiter removes its ticket just after its caller has the
// slot), and fails if it never does.
func settledQueue(t *testing.T, p *Pool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		files := queueFiles(t, p)
		if len(files) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue left %v", files)
		}
		time.Sleep(time.Millisecond)
	}
}

// queueFiles lists what is in the pool's queue directory.
func queueFiles(t *testing.T, p *Pool) []string {
	entries, err := os.ReadDir(filepath.Join(p.Dir(), slotfile.QueueDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// Processes are served in the order they started waiting, and each
// waiter is woken by the release itself (a wait far shorter than the
// safety re-check would fail otherwise).
func TestWaitersAreServedInArrivalOrder(t *testing.T) {
	p := newTestPool(t)
	holder := mustAcquire(t, p, 1, 0)
	var ws []*helper
	for i := range 5 {
		ws = append(ws, startHelper(t, "hold", p.Dir(), 1))
		waitForWaiters(t, p, 1, i+1)
	}
	st := waitForWaiters(t, p, 1, 5)
	for i, w := range st.Waiting {
		if w.PID != ws[i].pid() || w.Position != i+1 || w.WaitedSecs < 0 || w.Label != "helper hold" {
			t.Fatalf("waiter %d: %+v; want pid %d", i, w, ws[i].pid())
		}
	}
	holder.Release()
	for i, w := range ws {
		if id := w.held(); id != 0 {
			t.Fatalf("waiter %d took slot %d", i, id)
		}
		// Nobody behind it got in first.
		st := waitForWaiters(t, p, 1, len(ws)-i-1)
		if len(st.PIDs) != 1 || st.PIDs[0] != w.pid() {
			t.Fatalf("after waiter %d: %+v", i, st)
		}
		w.stdin.Close()
	}
}

// A holder that releases and at once asks again goes behind the waiters.
func TestReleaseAndAskAgainGoesToTheBack(t *testing.T) {
	p := newTestPool(t)
	g := mustAcquire(t, p, 1, 0)
	w := startHelper(t, "hold", p.Dir(), 1)
	waitForWaiters(t, p, 1, 1)
	g.Release()
	if _, err := p.Acquire(1, 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("re-acquire with a waiter in line: %v; want ErrBusy", err)
	}
	got := make(chan *Guard, 1)
	go func() {
		g, err := p.Acquire(1, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- g
	}()
	w.held() // the waiter goes first
	waitForWaiters(t, p, 1, 1)
	w.stdin.Close()
	if g := <-got; g != nil {
		g.Release()
	}
}

// A waiter killed while waiting, at the head of the line or behind it,
// never blocks those behind it.
func TestKilledWaiterNeverBlocksTheQueue(t *testing.T) {
	for _, head := range []bool{true, false} {
		name := "killed_behind_the_head"
		if head {
			name = "killed_at_the_head"
		}
		t.Run(name, func(t *testing.T) {
			p := newTestPool(t)
			holder := mustAcquire(t, p, 1, 0)
			first := startHelper(t, "hold", p.Dir(), 1)
			waitForWaiters(t, p, 1, 1)
			second := startHelper(t, "hold", p.Dir(), 1)
			waitForWaiters(t, p, 1, 2)
			third := startHelper(t, "hold", p.Dir(), 1)
			waitForWaiters(t, p, 1, 3)
			victim, next := second, first
			if head {
				victim, next = first, second
			}
			victim.kill()
			st := waitForWaiters(t, p, 1, 2)
			if len(st.DeadWaiters) > 1 {
				t.Fatalf("dead tickets: %v", st.DeadWaiters)
			}
			start := time.Now()
			holder.Release()
			next.held()
			t.Logf("next waiter took the slot %v after the release", time.Since(start))
			next.stdin.Close()
			third.held()
			third.stdin.Close()
			settledQueue(t, p)
		})
	}
}

// A waiter behind more dead tickets than one read of the line keeps
// (4) reads on past them, removes them all, and is served.
func TestWaiterMovesUpPastManyDeadTickets(t *testing.T) {
	p := newTestPool(t)
	holder := mustAcquire(t, p, 1, 0)
	var dead []*helper
	for i := range 4 + 2 {
		h := startHelper(t, "hold", p.Dir(), 1)
		waitForWaiters(t, p, 1, i+1)
		dead = append(dead, h)
	}
	// The last first: a waiter behind one that dies removes its ticket.
	for i := len(dead) - 1; i >= 0; i-- {
		dead[i].kill()
	}
	if st := waitForWaiters(t, p, 1, 0); len(st.DeadWaiters) != 4+2 {
		t.Fatalf("dead tickets: %v, want %d", st.DeadWaiters, 4+2)
	}
	last := startHelper(t, "hold", p.Dir(), 1)
	st := waitForWaiters(t, p, 1, 1)
	for deadline := time.Now().Add(10 * time.Second); len(st.DeadWaiters) > 0; st = waitForWaiters(t, p, 1, 1) {
		if time.Now().After(deadline) {
			t.Fatalf("dead tickets left ahead of the waiter: %v", st.DeadWaiters)
		}
		time.Sleep(time.Millisecond)
	}
	if st.Waiting[0].PID != last.pid() || st.Waiting[0].Position != 1 {
		t.Fatalf("waiting: %+v", st.Waiting)
	}
	holder.Release()
	last.held()
	last.stdin.Close()
	settledQueue(t, p)
}

// Cancelling or timing out a queued wait leaves the queue clean and
// lets the waiter behind move up.
func TestCancelledAndTimedOutWaitersLeaveTheQueue(t *testing.T) {
	p := newTestPool(t)
	holder := mustAcquire(t, p, 1, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan error, 1)
	go func() {
		_, err := p.AcquireContext(ctx, 1)
		cancelled <- err
	}()
	waitForWaiters(t, p, 1, 1)
	behind := startHelper(t, "hold", p.Dir(), 1)
	waitForWaiters(t, p, 1, 2)
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	st := waitForWaiters(t, p, 1, 1)
	if st.Waiting[0].PID != behind.pid() || st.Waiting[0].Position != 1 {
		t.Fatalf("after cancel: %+v", st.Waiting)
	}
	if _, err := p.Acquire(1, 30*time.Millisecond); !errors.Is(err, ErrBusy) {
		t.Fatalf("timed-out wait: %v", err)
	}
	waitForWaiters(t, p, 1, 1)
	holder.Release()
	behind.held()
	behind.stdin.Close()
	settledQueue(t, p)
}

// The uncontended path takes no ticket; the line's look sees a waiter, and
// stops seeing it once its dead ticket is removed.
func TestUncontendedPathTakesNoTicket(t *testing.T) {
	p := newTestPool(t)
	g := mustAcquire(t, p, 2, 0)
	if files := queueFiles(t, p); len(files) != 0 {
		t.Fatalf("queue holds %v after an uncontended acquire", files)
	}
	if !p.line().Empty() {
		t.Fatal("waiters present in an empty queue")
	}
	mustAcquire(t, p, 2, 0)
	w := startHelper(t, "hold", p.Dir(), 2)
	waitForWaiters(t, p, 2, 1)
	if p.line().Empty() {
		t.Fatal("a waiter is not seen")
	}
	w.kill()
	st, _ := p.ReadStatus(2)
	if len(st.Waiting) != 0 || len(st.DeadWaiters) != 1 || st.DeadWaiters[0].PID != w.pid() {
		t.Fatalf("status after the waiter died: %+v", st)
	}
	pids, err := p.RemoveDeadWaiters()
	if err != nil || len(pids) != 1 || pids[0] != w.pid() {
		t.Fatalf("RemoveDeadWaiters: %v %v", pids, err)
	}
	if !p.line().Empty() {
		t.Fatal("a removed dead waiter is still seen")
	}
	g.Release()
}

// Goroutines of one process queue in order too.
func TestGoroutinesQueueInOrder(t *testing.T) {
	p := newTestPool(t)
	holder := mustAcquire(t, p, 1, 0)
	const n = 6
	order := make(chan int, n)
	for i := range n {
		go func() {
			g, err := p.Acquire(1, 20*time.Second)
			if err != nil {
				t.Error(err)
				order <- -1
				return
			}
			order <- i
			g.Release()
		}()
		waitForWaiters(t, p, 1, i+1)
	}
	holder.Release()
	for want := range n {
		if got := <-order; got != want {
			t.Fatalf("served goroutine %d; want %d", got, want)
		}
	}
}

// A slot file left empty by a creator that died between creating and
// locking it raises no event when it grows old enough to reclaim: the head
// of the line looks again then, not at the 15 s safety re-check.
func TestWaiterReclaimsAnAbandonedEmptyFileWhenItAges(t *testing.T) {
	p := newTestPool(t)
	mustAcquire(t, p, 1, 0).Release() // make the directory
	os.WriteFile(p.SlotPath(0), nil, 0o600)
	start := time.Now()
	g, err := p.Acquire(1, 3*slotfile.FreshAge)
	if err != nil {
		t.Fatalf("waiter behind an abandoned empty file: %v", err)
	}
	g.Release()
	if took := time.Since(start); took < slotfile.FreshAge/2 {
		t.Fatalf("reclaimed a young empty file after %v", took)
	}
}

// A draft ticket left by a waiter killed before it joined the line is
// removed by cleanup at once: its name says whose it was.
func TestCleanupRemovesAnOrphanedDraft(t *testing.T) {
	p := newTestPool(t)
	mustAcquire(t, p, 1, 0).Release()
	dead := startHelper(t, "hold", t.TempDir(), 1)
	dead.held()
	dead.kill()
	name := slotfile.DraftPrefix + fmt.Sprintf("%020d-%010d-%06d", clock.Monotonic(), dead.pid(), 1)
	os.WriteFile(filepath.Join(p.Dir(), slotfile.QueueDir, name), nil, 0o600)
	live := slotfile.DraftPrefix + fmt.Sprintf("%020d-%010d-%06d", clock.Monotonic(), os.Getpid(), 999999)
	os.WriteFile(filepath.Join(p.Dir(), slotfile.QueueDir, live), nil, 0o600)
	if _, err := p.RemoveDeadWaiters(); err != nil {
		t.Fatal(err)
	}
	files := queueFiles(t, p)
	if len(files) != 1 || files[0] != live {
		t.Fatalf("queue after cleanup: %v; want the live draft", files)
	}
}
