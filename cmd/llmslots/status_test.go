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

// Without --max, status reads the pool with the max its holders and
// waiters recorded, not the default: three holders of max 3 are "3 held,
// 0 free" of max 3, not 3 held of a default 2 with a warning about max 3
// (issue 22, item 4). When they disagree it takes the largest, and says
// which values it saw.
func TestStatusTakesTheRecordedMax(t *testing.T) {
	e := newEnv(t)
	e.env = e.with("LLMSLOTS_MAX=2") // the default, whatever the machine
	for range 3 {
		e.holder("--max", "3")
	}
	r := e.run("status")
	if r.code != 0 || !strings.Contains(r.stdout, "(max 3, as its holders and waiters recorded): 3 held, 0 free") ||
		strings.Contains(r.stdout, "warning") {
		t.Errorf("status with holders of max 3:\n%s%s", r.stdout, r.stderr)
	}
	if st := readStatusEnv(t, e, e.env); st.Max != 3 || st.Free != 0 || len(st.Slots) != 3 {
		t.Errorf("status --json: max %d, %d free, %d slots; want max 3, 0 free, 3 slots", st.Max, st.Free, len(st.Slots))
	}
	e.holder("--max", "4")
	r = e.run("status")
	if !strings.Contains(r.stdout, "(max 4, the largest of 3, 4 that its holders and waiters recorded): 4 held, 0 free") ||
		!strings.Contains(r.stdout, "max 3;") {
		t.Errorf("status with holders of max 3 and 4:\n%s", r.stdout)
	}
	// --max still decides.
	if r := e.run("status", "--max", "2"); !strings.Contains(r.stdout, "(max 2): 4 held, 0 free") {
		t.Errorf("status --max 2:\n%s", r.stdout)
	}
}

// status calls a pause by hand one, with its reason, and a throttle
// report's pause "throttled"; it shows the date of an end that is not
// today, and says nothing of a pause once it has ended (issue 22, item 5).
func TestStatusShowsAPauseForWhatItIsWhileItLasts(t *testing.T) {
	e := newEnv(t)
	r := e.run("pause", "--for", "24h", "--reason", "provider incident")
	date := time.Now().Add(24 * time.Hour).Format(time.DateOnly) // never today
	if r.code != 0 || !strings.Contains(r.stdout, "until "+date+" ") {
		t.Errorf("pause --for 24h: exit %d, %q; want the end's date, %s", r.code, r.stdout, date)
	}
	r = e.run("status", "--max", "4")
	if !strings.Contains(r.stdout, "\npaused by hand until "+date+" ") || !strings.Contains(r.stdout, ": provider incident\n") ||
		strings.Contains(r.stdout, "throttled") {
		t.Errorf("status during a pause by hand:\n%s", r.stdout)
	}

	// A pause that ends: status says nothing of it afterwards.
	if r := e.run("pause", "--for", "200ms", "--reason", "short one"); r.code != 0 {
		t.Fatalf("pause: exit %d, %s", r.code, r.stderr)
	}
	time.Sleep(200 * time.Millisecond) // its length, counted from before it began
	r = e.run("status", "--max", "4")
	if strings.Contains(r.stdout, "paused") || strings.Contains(r.stdout, "throttled") || strings.Contains(r.stdout, "short one") {
		t.Errorf("status after the pause ended:\n%s", r.stdout)
	}

	// A throttle report is called one: its pause, then the lowered limit.
	if r := e.run("run", "--max", "4", "--throttled-exit", "3", "--", "sh", "-c", "exit 3"); r.code != 3 {
		t.Fatalf("run: exit %d, %s", r.code, r.stderr)
	}
	r = e.run("status", "--max", "4")
	if !strings.Contains(r.stdout, "\nthrottled: paused until ") || !strings.Contains(r.stdout, "last report") ||
		strings.Contains(r.stdout, "by hand") {
		t.Errorf("status after a throttle report:\n%s", r.stdout)
	}
}
