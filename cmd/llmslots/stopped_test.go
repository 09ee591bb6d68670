//go:build unix

package main

import (
	"syscall"
	"testing"
	"time"
)

// A waiter stopped (Ctrl-Z, SIGSTOP) behind the first in line holds up
// the line by about a second once it is first, not more (issue 22, item
// 17): max 1, holder H, waiters W1, W2 (stopped), W3. When W1 is done,
// W3 runs within seconds. Before, W3 went on waiting on W2's ticket,
// learned it was second only at the 15 s re-check, and ran 16 s late.
func TestStoppedWaiterHoldsUpTheLineASecond(t *testing.T) {
	e := newEnv(t)
	h := e.holder("--max", "1")
	w1 := e.start("run", "--max", "1", "--wait", "60s", "--", "sh", "-c", "echo w1; exec cat >/dev/null")
	waitingCount(t, e, 1)
	w2 := e.start("run", "--max", "1", "--wait", "60s", "--", "echo", "w2")
	waitingCount(t, e, 2)
	w3 := e.start("run", "--max", "1", "--wait", "60s", "--", "echo", "w3")
	waitingCount(t, e, 3)
	if err := w2.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer w2.cmd.Process.Signal(syscall.SIGCONT)
	h.stdin.Close()
	if l := w1.line(); l != "w1" {
		t.Fatalf("W1 said %q", l)
	}
	w1.stdin.Close()
	w1.wait()
	done := time.Now()
	if l := w3.line(); l != "w3" {
		t.Fatalf("W3 said %q", l)
	}
	if late := time.Since(done); late > 3*time.Second {
		t.Fatalf("W3 ran %v after W1 was done, with a stopped W2 ahead of it; want about 1 s", late)
	} else {
		t.Logf("W3 ran %v after W1 was done", late.Round(time.Millisecond))
	}
	w2.cmd.Process.Signal(syscall.SIGCONT)
	if l := w2.line(); l != "w2" {
		t.Fatalf("W2, resumed, said %q", l)
	}
}

// Two waiters stopped in a row hold up the line by about two seconds, not
// for good: max 1, holder H, waiters W1, W2, W3 (W2 and W3 stopped), W4.
// When W1 is done, W4 runs. Before, W4 waited on W3's ticket for ever (a
// review found it past 10 minutes), as only the second in line passed.
func TestTwoStoppedWaitersHoldUpTheLineTwoSeconds(t *testing.T) {
	e := newEnv(t)
	h := e.holder("--max", "1")
	w1 := e.start("run", "--max", "1", "--wait", "60s", "--", "sh", "-c", "echo w1; exec cat >/dev/null")
	waitingCount(t, e, 1)
	var stopped []*proc
	for i := range 2 {
		w := e.start("run", "--max", "1", "--wait", "60s", "--", "echo", "stopped")
		waitingCount(t, e, 2+i)
		stopped = append(stopped, w)
	}
	w4 := e.start("run", "--max", "1", "--wait", "60s", "--", "echo", "w4")
	waitingCount(t, e, 4)
	for _, w := range stopped {
		if err := w.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer w.cmd.Process.Signal(syscall.SIGCONT)
	}
	h.stdin.Close()
	if l := w1.line(); l != "w1" {
		t.Fatalf("W1 said %q", l)
	}
	w1.stdin.Close()
	w1.wait()
	done := time.Now()
	if l := w4.line(); l != "w4" {
		t.Fatalf("W4 said %q", l)
	}
	if late := time.Since(done); late > 4*time.Second {
		t.Fatalf("W4 ran %v after W1 was done, behind two stopped waiters; want about 2 s", late)
	} else {
		t.Logf("W4 ran %v after W1 was done", late.Round(time.Millisecond))
	}
}
