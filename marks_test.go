//go:build unix

package llmslots

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/clock"
)

// A waiter's mark is gone once it leaves, though its descriptor is kept;
// two waiters of one process are marked apart, so the first to leave does
// not unmark the other; and a descriptor of a waiters file that was
// removed with its directory is not used again.
func TestMarksKeptDescriptors(t *testing.T) {
	p, err := NewPool(filepath.Join(t.TempDir(), "pool"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.prepare(); err != nil {
		t.Fatal(err)
	}
	join := func() *ticket {
		t.Helper()
		tk, err := p.enqueue(clock.Monotonic(), 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !tk.marked {
			t.Fatal("not marked")
		}
		return tk
	}
	want := func(waiting bool) {
		t.Helper()
		if got := p.waitersPresent(); got != waiting {
			t.Fatalf("waitersPresent: %v, want %v", got, waiting)
		}
	}
	first, second := join(), join()
	if first.waiters == second.waiters {
		t.Fatal("two waiters share one descriptor")
	}
	want(true)
	first.leave()
	want(true) // second still waits
	second.leave()
	want(false)
	if n := len(p.idleMarks.files); n != 2 {
		t.Fatalf("%d descriptors kept, want 2", n)
	}
	third := join() // on a kept descriptor
	want(true)
	third.leave()
	want(false)

	// The directory removed and made again: the kept descriptors name a
	// file nobody looks at any more.
	if err := os.RemoveAll(p.dir); err != nil {
		t.Fatal(err)
	}
	if err := p.remake(); err != nil {
		t.Fatal(err)
	}
	fourth := join()
	want(true)
	if n := len(p.idleMarks.files); n != 0 {
		t.Fatalf("%d stale descriptors still kept", n)
	}
	fourth.leave()
	want(false)
}

// A queue renamed away and made again gets a new waiters file: a waiter
// must mark that one, not the old file a kept descriptor still has open
// (which keeps its link under the old name), or other processes see no
// waiter and take free slots ahead of the line.
func TestKeptMarkFollowsAQueueMadeAgain(t *testing.T) {
	p := newTestPool(t)
	g := mustAcquire(t, p, 1, 0)
	q, err := NewPool(p.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Acquire(1, 20*time.Millisecond); !errors.Is(err, ErrBusy) {
		t.Fatalf("Acquire while held: %v", err) // and q keeps its waiters descriptor
	}
	qdir := queueDir(p.Dir())
	if err := os.Rename(qdir, qdir+"-old"); err != nil {
		t.Fatal(err)
	}
	r, err := NewPool(p.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.prepare(); err != nil { // makes .queue again
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		h, err := q.Acquire(1, 10*time.Second)
		if err == nil {
			h.Release()
		}
		got <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !r.waitersPresent() {
		if time.Now().After(deadline) {
			g.Release()
			<-got
			t.Fatal("a process waits in the new queue, but the pool shows no waiter")
		}
		time.Sleep(time.Millisecond)
	}
	g.Release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}
