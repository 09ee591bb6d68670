//go:build unix

package llmslots

import (
	"fmt"
	"os"
	"testing"
)

// The reference takes a slot in two steps: create the file exclusively,
// then flock it; and it never checks that the file it locked still has a
// name. A library acquirer that finds the file in between takes it for a
// dead holder's (its lock is free), deletes it and creates its own. Here
// the reference helper stops in that window until told to go on; the
// outcome must be one holder of slot 0, not two.
//
// It fails with the library as it is: the acquirer deletes the fresh file,
// creates its own, and both hold slot 0. See skipWhileReclaimingFreshFiles.
func TestInteropReclaimBetweenReferenceCreateAndLock(t *testing.T) {
	skipWhileReclaimingFreshFiles(t)
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

// skipWhileReclaimingFreshFiles skips t, unless LLMSLOTS_KNOWN_BUGS=1, as
// long as the library takes an empty, unlocked slot file that was just
// created for a dead holder's and reclaims it at once. With reference-
// protocol processes around, that is a known over-grant (see
// TestInteropReclaimBetweenReferenceCreateAndLock), which the tests that
// call this would report, at random, as a failure. A fix: reclaim an empty
// unlocked file only once it is older than a grace period (the reference
// writes "pid=" right after locking, so a dead holder's file is seldom
// empty). Once the library does that, these tests run by themselves.
func skipWhileReclaimingFreshFiles(t *testing.T) {
	t.Helper()
	if os.Getenv("LLMSLOTS_KNOWN_BUGS") == "1" {
		return
	}
	p := newTestPool(t)
	f, err := os.OpenFile(p.SlotPath(0), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if g, err := p.Acquire(1, 0); err == nil {
		g.Release()
		t.Skip("KNOWN BUG: the library deletes a slot file a reference-protocol process has just created and not yet " +
			"locked, and both then hold the slot; LLMSLOTS_KNOWN_BUGS=1 runs this test anyway")
	}
}
