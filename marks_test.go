//go:build unix

package llmslots

import (
	"os"
	"path/filepath"
	"testing"

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
		tk, err := p.enqueue(clock.Monotonic(), 2)
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
