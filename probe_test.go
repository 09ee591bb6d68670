//go:build unix

package llmslots

import (
	"os"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/slotfile"
)

// A reference-protocol slot file replaced between probe's look and its
// lock: the holder (a reference process) deletes its file and an acquirer
// (another reference process) creates a new, empty one it has not locked
// yet. Probe must judge the file it locked, which is young and empty, so
// held: reclaiming it would delete it under its creator, who then locks a
// file with no name while llmslots holds a new one: two holders.
func TestProbeJudgesTheFileItLocked(t *testing.T) {
	p := newTestPool(t)
	if err := p.prepare(); err != nil {
		t.Fatal(err)
	}
	path := p.SlotPath(0)
	// A dead reference holder's file: a record, old, nobody holds its lock.
	if err := os.WriteFile(path, []byte("pid=999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	os.Chtimes(path, old, old)
	replaced := false
	slotfile.TestHooks.ProbeBeforeLock = func(path string) {
		if replaced {
			return
		}
		replaced = true
		os.Remove(path)                // the holder releases
		os.WriteFile(path, nil, 0o600) // a reference acquirer creates, not yet locked
	}
	defer func() { slotfile.TestHooks.ProbeBeforeLock = nil }()
	g, err := p.Acquire(1, 0)
	if err == nil {
		g.Release()
		t.Fatal("took the slot by deleting a file its creator had not locked yet")
	}
	cur, err := os.Lstat(path)
	if err != nil || cur.Size() != 0 {
		t.Fatalf("the new creator's file is gone or changed: %v", err)
	}
}
