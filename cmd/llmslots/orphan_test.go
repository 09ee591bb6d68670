//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// run --throttled-on reads CMD's stderr; once run is SIGKILLed, CMD keeps
// the slot and must keep its stderr too: before, that was a pipe to the
// dead run, and CMD's next write to it killed it (SIGPIPE), slot held for
// nothing (issue 22, item 15, on the command's path: shims pass
// --throttled-on). Its stderr is now a file of its own, which run copies.
func TestThrottledOnRunKilledLeavesTheCommandItsStderr(t *testing.T) {
	e := newEnv(t)
	gate, done := filepath.Join(e.dir, "go"), filepath.Join(e.dir, "done")
	script := `echo ready; echo before >&2; while [ ! -e "$1" ]; do sleep 0.02; done; echo after >&2 && echo finished > "$2"`
	r := e.start("run", "--max", "1", "--throttled-on", "429", "--", "sh", "-c", script, "sh", gate, done)
	if l := r.line(); l != "ready" {
		t.Fatalf("command said %q", l)
	}
	if l := r.errLine(); !strings.Contains(l, "before") {
		t.Fatalf("run copied %q of the command's stderr, want before", l)
	}
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.wait()
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(done); string(b) == "finished\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command never finished after writing to its stderr with run killed (SIGPIPE?)")
		}
	}
	if r := e.run("run", "--max", "1", "--wait", "5s", "--", "true"); r.code != 0 {
		t.Fatalf("the slot after the command: exit %d; %s", r.code, r.stderr)
	}
}
