//go:build unix

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
)

// waitFor reads the pool's status (with --max max) until ok accepts it,
// failing the test after 10 s.
func waitFor(t *testing.T, e *testEnv, max int, what string, ok func(llmslots.Status) bool) llmslots.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := readStatus(t, e, max)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s: %+v", what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The COMMAND of a slot, or of a waiter, that `llmslots run -- CMD` holds
// is CMD: not the wrapper with its flags, which filled the column and hid
// the command (issue 22, item 9).
func TestStatusShowsTheCommandHoldingTheSlot(t *testing.T) {
	e := newEnv(t)
	h := e.holder("--max", "1", "--label", "first", "--throttled-on", "429|rate.?limit|usage limit")
	w := e.start("run", "--max", "1", "--label", "second", "--", "echo", "codex", "exec", "review")
	st := waitFor(t, e, 1, "waiter", func(st llmslots.Status) bool { return len(st.Waiting) == 1 })
	const holding = "sh -c echo ready; exec cat >/dev/null"
	if got := st.Slots[0].Command; got != holding {
		t.Errorf("slot 0's command is %q; want %q", got, holding)
	}
	if got := st.Waiting[0].Command; got != "echo codex exec review" {
		t.Errorf("the waiter's command is %q; want %q", got, "echo codex exec review")
	}
	table := e.run("status", "--max", "1").stdout
	if !strings.Contains(table, holding) || !strings.Contains(table, "echo codex exec review") || strings.Contains(table, bin) {
		t.Errorf("status shows:\n%s\nwant the commands, not the llmslots wrapper", table)
	}
	h.stdin.Close()
	if l := w.line(); l != "codex exec review" {
		t.Errorf("the waiter's command said %q", l)
	}
}
