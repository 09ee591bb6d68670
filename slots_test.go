//go:build unix

package llmslots_test

// The API as a caller sees it, from outside the package: pools in
// temporary directories, goroutines as callers. Tests that need other
// processes, signals or the files' insides are in the package's own tests.

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/internal/proc"
	"github.com/llmslots/llmslots/internal/slotfile"
)

// newPool is a pool in a directory of the test's own.
func newPool(t *testing.T, opts ...llmslots.Option) *llmslots.Pool {
	t.Helper()
	p, err := llmslots.NewPool(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// acquire takes a slot of p or fails the test; the slot is released when
// the test ends.
func acquire(t *testing.T, p *llmslots.Pool, max int, wait time.Duration) *llmslots.Guard {
	t.Helper()
	g, err := p.Acquire(max, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Release() })
	return g
}

func TestAcquireTakesLowestFreeSlotAndReleaseFreesIt(t *testing.T) {
	p := newPool(t)
	g0 := acquire(t, p, 3, 0)
	g1 := acquire(t, p, 3, 0)
	if g0.SlotID() != 0 || g1.SlotID() != 1 {
		t.Fatalf("slots %d, %d; want 0, 1", g0.SlotID(), g1.SlotID())
	}
	if err := g0.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(g0.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("slot file still there after Release: %v", err)
	}
	if g := acquire(t, p, 3, 0); g.SlotID() != 0 {
		t.Fatalf("after releasing slot 0 got slot %d", g.SlotID())
	}
}

func TestSlotFileRecordsHolder(t *testing.T) {
	p := newPool(t, llmslots.WithLabel("review bot"))
	before := time.Now()
	g := acquire(t, p, 1, 0)
	data, err := os.ReadFile(g.Path())
	if err != nil {
		t.Fatal(err)
	}
	wantFirst := "pid=" + strconv.Itoa(os.Getpid()) + "\n"
	if !strings.HasPrefix(string(data), wantFirst) {
		t.Fatalf("record starts %q; want first line %q", data, wantFirst)
	}
	rec := slotfile.ParseRecord(data)
	host, _ := os.Hostname()
	if rec.Host != host || rec.Label != "review bot" || rec.Command == "" || rec.Since.Before(before.Add(-time.Second)) {
		t.Fatalf("record %+v", rec)
	}
	if runtime.GOOS == "linux" && rec.Start != proc.StartTime(os.Getpid()) {
		t.Fatalf("start %q, want %q", rec.Start, proc.StartTime(os.Getpid()))
	}
}

func TestGoroutinesEachGetADistinctSlot(t *testing.T) {
	p := newPool(t)
	const max = 8
	var wg sync.WaitGroup
	guards := make([]*llmslots.Guard, max)
	errs := make([]error, max)
	for i := range max {
		wg.Add(1)
		go func() {
			defer wg.Done()
			guards[i], errs[i] = p.Acquire(max, 5*time.Second)
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for i, g := range guards {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		defer g.Release()
		if seen[g.SlotID()] {
			t.Fatalf("slot %d handed out twice", g.SlotID())
		}
		seen[g.SlotID()] = true
	}
	if _, err := p.Acquire(max, 0); !errors.Is(err, llmslots.ErrBusy) {
		t.Fatalf("ninth Acquire: %v; want llmslots.ErrBusy", err)
	}
}

func TestWaitingAcquireGetsTheSlotWhenFreed(t *testing.T) {
	p := newPool(t)
	g := acquire(t, p, 1, 0)
	got := make(chan *llmslots.Guard)
	go func() {
		g2, err := p.Acquire(1, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- g2
	}()
	if err := g.Release(); err != nil {
		t.Fatal(err)
	}
	g2 := <-got
	if g2 == nil || g2.SlotID() != 0 {
		t.Fatalf("waiter got %v", g2)
	}
	g2.Release()
}

func TestBusyErrorNamesMaxWaitAndHolders(t *testing.T) {
	p := newPool(t)
	acquire(t, p, 2, 0)
	acquire(t, p, 2, 0)
	start := time.Now()
	_, err := p.Acquire(2, 150*time.Millisecond)
	if !errors.Is(err, llmslots.ErrBusy) {
		t.Fatalf("got %v; want llmslots.ErrBusy", err)
	}
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Fatalf("gave up after %v; want the full wait", waited)
	}
	me := strconv.Itoa(os.Getpid())
	// The holders are this very process, and the error says so.
	for _, want := range []string{"max=2", "150ms", "pid " + me + " (this process", "), pid " + me + " (this process"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	var busy *llmslots.BusyError
	if !errors.As(err, &busy) || busy.Dir != p.Dir() || busy.Max != 2 || busy.Wait != 150*time.Millisecond || len(busy.Holders) != 2 {
		t.Fatalf("llmslots.BusyError %+v", busy)
	}
	for i, h := range busy.Holders {
		if h.SlotID != i || h.PID != os.Getpid() || !h.Self {
			t.Errorf("holder %d: %+v; want slot %d held by this process", i, h, i)
		}
	}
}

func TestAcquireContextEndsWithTheContext(t *testing.T) {
	p := newPool(t)
	acquire(t, p, 1, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	g, err := p.AcquireContext(ctx, 1)
	if g != nil || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, llmslots.ErrBusy) {
		t.Fatalf("got %v, %v; want context.DeadlineExceeded and llmslots.ErrBusy", g, err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := p.AcquireContext(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want context.Canceled", err)
	}
	// A done context still gets a free slot: it tries once first.
	g, err = p.AcquireContext(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	g.Release()
}

func TestReleaseIsIdempotent(t *testing.T) {
	p := newPool(t)
	g := acquire(t, p, 1, 0)
	for i := range 3 {
		if err := g.Release(); err != nil {
			t.Fatalf("Release #%d: %v", i+1, err)
		}
	}
	if g.Held() || g.SlotID() != 0 {
		t.Fatalf("after Release: held=%v id=%d", g.Held(), g.SlotID())
	}
	var nilGuard *llmslots.Guard
	if err := nilGuard.Release(); err != nil || nilGuard.SlotID() != -1 || nilGuard.Held() {
		t.Fatal("nil llmslots.Guard misbehaves")
	}
}

// Callers are served in the order they asked: goroutines that queue one
// after another behind a holder get the slot one after another.
func TestCallersAreServedInArrivalOrder(t *testing.T) {
	p := newPool(t)
	holder := acquire(t, p, 1, 0)
	const n = 5
	order := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, err := p.Acquire(1, 20*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			time.Sleep(5 * time.Millisecond)
			g.Release()
		}()
		// The next asks only once this one waits in line.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			if st, err := p.ReadStatus(1); err == nil && len(st.Waiting) == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiter %d did not queue", i)
			}
		}
	}
	holder.Release()
	wg.Wait()
	close(order)
	want := 0
	for got := range order {
		if got != want {
			t.Fatalf("waiter %d served when waiter %d's turn came", got, want)
		}
		want++
	}
}

// Arguments that cannot be right give ErrInvalid, and hold nothing.
func TestInvalidArgumentsAreRefused(t *testing.T) {
	p := newPool(t)
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"max 0", func() error { _, err := p.Acquire(0, 0); return err }},
		{"max above MaxSlots", func() error { _, err := p.Acquire(llmslots.MaxSlots+1, 0); return err }},
		{"negative wait", func() error { _, err := p.Acquire(1, -time.Second); return err }},
		{"nil context", func() error { _, err := p.AcquireContext(nil, 1); return err }}, //lint:ignore SA1012 the nil context is the bad input under test
		{"relative directory", func() error { _, err := llmslots.NewPool("slots"); return err }},
		{"bad pool name", func() error { _, err := llmslots.NamedPool("../x"); return err }},
		{"nil pool", func() error { var nilPool *llmslots.Pool; _, err := nilPool.Acquire(1, 0); return err }},
	} {
		if err := c.call(); !errors.Is(err, llmslots.ErrInvalid) {
			t.Errorf("%s: got %v; want ErrInvalid", c.name, err)
		}
	}
	if st, err := p.ReadStatus(1); err != nil || st.Active != 0 {
		t.Fatalf("after refused calls: %+v %v", st, err)
	}
}

// Pool.With gives each job of a program its own label and progress
// callback on one pool (issue 22, item 12): each waiting job is told of
// its own wait, under its own label, and holds under it; the jobs share
// the limit. A bad option is an error, a nil pool too.
func TestWithGivesEachJobItsLabelAndProgress(t *testing.T) {
	base := newPool(t, llmslots.WithLabel("batch"))
	held, err := base.Acquire(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string][]string{} // by job: the labels its callback saw
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, job := range []string{"job-a", "job-b", "job-c"} {
		p, err := base.With(llmslots.WithLabel(job), llmslots.WithProgress(func(pr llmslots.Progress) {
			mu.Lock()
			seen[job] = append(seen[job], pr.Label)
			mu.Unlock()
		}))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, err := p.Acquire(1, 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			st, _ := p.ReadStatus(1)
			if l := st.Slots[g.SlotID()].Label; l != job {
				errs <- errors.New(job + " holds under the label " + l)
			}
			g.Release()
		}()
	}
	time.Sleep(500 * time.Millisecond) // each job has waited and said so
	held.Release()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, job := range []string{"job-a", "job-b", "job-c"} {
		if len(seen[job]) == 0 || seen[job][0] != job {
			t.Errorf("%s's progress callback saw labels %q", job, seen[job])
		}
	}
	if _, err := base.With(llmslots.WithLabel("bad\x1b[2J")); !errors.Is(err, llmslots.ErrInvalid) {
		t.Errorf("With a bad label: %v", err)
	}
	var nilPool *llmslots.Pool
	if _, err := nilPool.With(); !errors.Is(err, llmslots.ErrInvalid) {
		t.Errorf("With on a nil pool: %v", err)
	}
}
