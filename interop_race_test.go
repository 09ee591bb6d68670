//go:build unix

package llmslots

import (
	"fmt"
	"testing"
)

// The reference takes a slot in two steps: create the file exclusively,
// then flock it; and it never checks that the file it locked still has a
// name. A library acquirer that finds the file in between takes it for a
// dead holder's (its lock is free), deletes it and creates its own. Here
// the reference helper stops in that window until told to go on; the
// outcome must be one holder of slot 0, not two. (The library leaves a young
// empty file alone: see slotfile.FreshAge.)
func TestInteropReclaimBetweenReferenceCreateAndLock(t *testing.T) {
	p := newTestPool(t)
	h := startHelper(t, "ref-hold", p.Dir(), 1, "HELPER_PAUSE=1")
	if l := h.line(); l != "created 0" {
		t.Fatalf("reference helper said %q; want \"created 0\"", l)
	}
	g, err := p.Acquire(1, 0)
	if err != nil {
		t.Logf("library acquirer during the reference's create/lock window: %v", err)
	}
	if g != nil {
		defer g.Release()
	}
	fmt.Fprintln(h.stdin)
	said := h.line()
	refHeld := said == "held 0"
	if g != nil && refHeld {
		t.Errorf("over-grant: the library acquirer holds slot 0 (it deleted the reference's fresh, unlocked file and " +
			"created its own) and the reference process holds slot 0 too (it locked the deleted file)")
	}
	if g == nil && !refHeld {
		t.Errorf("nobody holds slot 0: library %v, reference %q", err, said)
	}
	h.stdin.Close()
}
