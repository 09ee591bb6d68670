//go:build unix

package llmslots

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/throttle"
)

// The cases of a field report (issue 22) on the library: each failed on
// the code it was reported against.

// writeLimit gives pool p a throttle state with the shared limit at limit
// and no pause, as a report lowering it would leave it.
func writeLimit(t *testing.T, p *Pool, limit float64) {
	t.Helper()
	if err := p.prepare(); err != nil {
		t.Fatal(err)
	}
	if err := throttle.Write(p.Dir(), throttle.State{Limit: limit}, p.group.maker().Create); err != nil {
		t.Fatal(err)
	}
}

// Item 18: a throttle lock held by another process (a group member, a
// stopped one) while the state restricts grants does not keep a waiter
// past its wait or its context. Before, a 2 s wait returned after 5.8 s.
func TestHeldThrottleLockKeepsNoWaiterPastItsDeadline(t *testing.T) {
	p := newTestPool(t)
	writeLimit(t, p, 1)
	lock, err := os.OpenFile(filepath.Join(p.Dir(), throttle.LockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if ok, err := filelock.TryLock(lock); !ok || err != nil {
		t.Fatalf("taking the throttle lock: %v %v", ok, err)
	}
	start := time.Now()
	if g, err := p.Acquire(2, 2*time.Second); !errors.Is(err, ErrBusy) {
		g.Release()
		t.Fatalf("Acquire(2, 2s) with the throttle lock held elsewhere: %v, want ErrBusy", err)
	}
	if took := time.Since(start); took < 2*time.Second || took > 2500*time.Millisecond {
		t.Fatalf("Acquire(2, 2s) returned after %v", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	if g, err := p.AcquireContext(ctx, 2); !errors.Is(err, context.DeadlineExceeded) {
		g.Release()
		t.Fatalf("AcquireContext(1 s) with the throttle lock held elsewhere: %v", err)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("AcquireContext with a 1 s context returned after %v", took)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel) // as the command does on SIGINT
	start = time.Now()
	if g, err := p.AcquireContext(ctx, 2); !errors.Is(err, context.Canceled) {
		g.Release()
		t.Fatalf("AcquireContext cancelled at 0.5 s: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("AcquireContext cancelled at 0.5 s returned after %v", took)
	}
}

// Item 19: a limit lowered from 4 to 2 holds for processes whose max is
// 4, whatever a process with max 2 did in between, and with the state
// file given a second name (a `cp -al` backup). Before, one `run --max 2`
// cleared a flag the others relied on, and four held at once.
func TestLoweredLimitHoldsAfterASmallerMax(t *testing.T) {
	p := newTestPool(t)
	writeLimit(t, p, 2)
	if err := os.Link(filepath.Join(p.Dir(), throttle.FileName), filepath.Join(t.TempDir(), "backup")); err != nil {
		t.Fatal(err)
	}
	small := startHelper(t, "cycle", p.Dir(), 2, "HELPER_CYCLES=1")
	if err := small.cmd.Wait(); err != nil {
		t.Fatalf("a process with max 2: %v", err)
	}
	var holders []*helper
	said := make(chan string, 4)
	for range 4 {
		h := startHelper(t, "hold", p.Dir(), 4)
		holders = append(holders, h)
		go func() {
			if h.out.Scan() {
				said <- h.out.Text()
			}
		}()
	}
	held := 0
	for timeout := time.After(3 * time.Second); ; {
		select {
		case l := <-said:
			if l[:4] != "held" {
				t.Fatalf("a holder said %q", l)
			}
			held++
			continue
		case <-timeout:
		}
		break
	}
	if held != 2 {
		t.Fatalf("%d processes with max 4 hold a slot under a limit of 2, want 2", held)
	}
	for _, h := range holders {
		h.stdin.Close()
	}
}

// Item 19, with maxes mixed: holders with max 4 keep slots 2 and 3 while
// a report of theirs lowers the limit to 2; a process with max 2, to which
// the limit changes nothing of its own, must not take slot 0 as a third.
func TestLoweredLimitHoldsForASmallerMax(t *testing.T) {
	p := newTestPool(t)
	reporter := mustAcquire(t, p, 4, 0)
	byID := map[int]*helper{}
	for range 3 {
		h := startHelper(t, "hold", p.Dir(), 4)
		byID[h.held()] = h
	}
	reporter.Throttled(time.Millisecond) // 4 * 0.7: the limit is 2
	reporter.Release()
	for id, h := range byID {
		if id != 2 && id != 3 {
			h.kill()
		}
	}
	if len(byID) != 3 || byID[2] == nil || byID[3] == nil {
		t.Fatalf("the holders took slots %v, want 1, 2 and 3", byID)
	}
	q, err := NewPool(p.Dir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = q.Acquire(2, 300*time.Millisecond)
	var busy *BusyError
	if !errors.As(err, &busy) {
		t.Fatalf("Acquire(2) beside two holders under a limit of 2: %v, want ErrBusy", err)
	}
	// The error names the holders the refusal counted, above its max too.
	if ids := fmt.Sprint(busy.Holders); !strings.Contains(ids, "{2 ") || !strings.Contains(ids, "{3 ") {
		t.Errorf("the busy error names holders %v, not those of slots 2 and 3", busy.Holders)
	}
}

// A wait that ends during a pause says the pool is paused, until when and
// why, not "held by pids unknown" (issue 22, item 5); one that ends under
// a lowered limit says so.
func TestBusyErrorSaysThePause(t *testing.T) {
	p := newTestPool(t)
	if err := p.Pause(time.Hour, "provider maintenance"); err != nil {
		t.Fatal(err)
	}
	_, err := p.Acquire(2, 100*time.Millisecond)
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Throttle == nil || busy.Throttle.PausedUntil.IsZero() {
		t.Fatalf("Acquire during a pause: %v", err)
	}
	msg := err.Error()
	until := busy.Throttle.PausedUntil.Format(time.DateTime)
	for _, want := range []string{"paused until " + until, "paused by hand by pid", "provider maintenance"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the busy error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "pids unknown") {
		t.Errorf("the busy error %q blames unknown holders", msg)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	g := mustAcquire(t, p, 2, 0)
	g.Throttled(time.Millisecond)
	time.Sleep(10 * time.Millisecond)
	if _, err := p.Acquire(2, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "throttled to 1 at once") {
		t.Fatalf("Acquire beside one holder under a limit of 1: %v", err)
	}
}

// Item 23: a filesystem root is no pool directory, given or from
// LLMSLOTS_DIR: before, LLMSLOTS_DIR=/ was accepted and made /.queue.
func TestFilesystemRootIsNoPool(t *testing.T) {
	if _, err := NewPool("/"); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewPool(\"/\"): %v, want ErrInvalid", err)
	}
	t.Setenv(EnvDir, "//")
	if _, err := DefaultPool(); !errors.Is(err, ErrInvalid) {
		t.Errorf("DefaultPool with %s=//: %v, want ErrInvalid", EnvDir, err)
	}
	if _, err := Acquire(1, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("Acquire with %s=//: %v, want ErrInvalid", EnvDir, err)
	}
	if _, err := os.Lstat("/" + ".queue"); err == nil {
		t.Errorf("/.queue exists")
	}
}

// Item 23, from review: a symbolic link to / is a filesystem root too.
func TestLinkToTheRootIsNoPool(t *testing.T) {
	link := filepath.Join(t.TempDir(), "root")
	if err := os.Symlink("/", link); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPool(link); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewPool(a link to /): %v, want ErrInvalid", err)
	}
	if _, err := NewPool(filepath.Join(link, "codex")); err != nil {
		t.Errorf("NewPool(a directory below a link to /): %v", err)
	}
}
