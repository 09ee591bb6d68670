//go:build unix

package main

import (
	"strings"
	"testing"
	"time"
)

// Off a terminal a waiting run writes one line, as the docs say, however
// the pool's pause comes and goes while it waits: it used to add a line
// when a pause started and one when it ended (issue 22, item 10). The
// second after each change is four of the waiter's looks at the pool
// (every 250 ms): time for the lines it must not write.
func TestWaitingOffATerminalIsOneLine(t *testing.T) {
	e := newEnv(t)
	h := e.holder("--max", "1")
	w := e.start("run", "--max", "1", "--", "echo", "ran")
	if l := w.errLine(); !strings.Contains(l, "waiting for a slot") {
		t.Fatalf("waiter said %q", l)
	}
	for _, args := range [][]string{{"pause", "--for", "1h"}, {"resume"}} {
		if r := e.run(args...); r.code != 0 {
			t.Fatalf("%s: exit %d, %s", args[0], r.code, r.stderr)
		}
		time.Sleep(time.Second)
	}
	h.stdin.Close()
	if l := w.line(); l != "ran" {
		t.Fatalf("waiter's command said %q", l)
	}
	if code := w.wait(); code != 0 {
		t.Fatalf("waiter exited %d", code)
	}
	var more []string
	for w.errOut.Scan() {
		more = append(more, w.errOut.Text())
	}
	if len(more) > 0 {
		t.Errorf("the waiter wrote more lines after its first: %q", more)
	}
}
