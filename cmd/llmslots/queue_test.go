//go:build unix

package main

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitingCount polls status until n processes wait.
func waitingCount(t *testing.T, e *testEnv, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(readStatus(t, e, 1).Waiting) != n {
		if time.Now().After(deadline) {
			t.Fatalf("never %d waiting: %+v", n, readStatus(t, e, 1).Waiting)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// status lists the queue in order. A waiter killed while waiting is
// removed from the queue by the waiter behind it at once; the last one's
// ticket stays until cleanup removes it.
func TestStatusShowsTheQueueAndCleanupRemovesDeadWaiters(t *testing.T) {
	e := newEnv(t)
	h := e.holder("--max", "1")
	first := e.start("run", "--max", "1", "--label", "first", "--", "sh", "-c", "echo first; exec cat >/dev/null")
	waitingCount(t, e, 1)
	middle := e.start("run", "--max", "1", "--label", "middle", "--", "true")
	waitingCount(t, e, 2)
	last := e.start("run", "--max", "1", "--label", "last", "--", "echo", "last")
	waitingCount(t, e, 3)
	doomed := e.start("run", "--max", "1", "--label", "doomed", "--", "true")
	waitingCount(t, e, 4)

	r := e.run("status", "--max", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "4 waiting") {
		t.Fatalf("status: exit %d\n%s", r.code, r.stdout)
	}
	for i, label := range []string{"first", "middle", "last", "doomed"} {
		if !strings.Contains(r.stdout, strconv.Itoa(i+1)+"    ") || !strings.Contains(r.stdout, label) {
			t.Fatalf("status does not list %s at %d:\n%s", label, i+1, r.stdout)
		}
	}
	st := readStatus(t, e, 1)
	if st.Waiting[0].PID != first.pid() || st.Waiting[1].PID != middle.pid() || st.Waiting[2].PID != last.pid() || st.Waiting[3].PID != doomed.pid() {
		t.Fatalf("queue order %+v", st.Waiting)
	}

	middle.cmd.Process.Signal(syscall.SIGKILL) // the waiter behind removes its ticket
	middle.wait()
	doomed.cmd.Process.Signal(syscall.SIGKILL) // nobody behind: its ticket stays
	doomed.wait()
	waitingCount(t, e, 2)
	if st := readStatus(t, e, 1); len(st.DeadWaiters) != 1 || st.DeadWaiters[0].PID != doomed.pid() {
		t.Fatalf("after the kill: waiting %+v, dead %+v", st.Waiting, st.DeadWaiters)
	}
	r = e.run("cleanup", "--dry-run", "--max", "1")
	if !strings.Contains(r.stdout, "would remove dead waiter's ticket") {
		t.Fatalf("cleanup --dry-run: %q", r.stdout)
	}
	r = e.run("cleanup", "--max", "1")
	if !strings.Contains(r.stdout, "removed dead waiter's ticket (pid "+strconv.Itoa(doomed.pid())+")") {
		t.Fatalf("cleanup: %q %q", r.stdout, r.stderr)
	}
	if st := readStatus(t, e, 1); len(st.DeadWaiters) != 0 {
		t.Fatalf("dead tickets left: %+v", st.DeadWaiters)
	}

	h.stdin.Close()
	if l := first.line(); l != "first" {
		t.Fatalf("first waiter said %q", l)
	}
	first.stdin.Close()
	if l := last.line(); l != "last" {
		t.Fatalf("last waiter said %q", l)
	}
	if code := last.wait(); code != 0 {
		t.Fatalf("last exited %d", code)
	}
}
