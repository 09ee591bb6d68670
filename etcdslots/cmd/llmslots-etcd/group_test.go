//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmslots/llmslots/etcdslots/internal/etcdtest"
)

// grandchild is the sh -c script that runs a slotChild as a child of the
// shell, the shape of `sh -c "python3 child.py; true"` and `sh -c "child &
// wait"`: the shell is run's command, the slotChild its child. The inner
// shell writes its pid to the file "$0" and execs the slotChild, so the
// test can kill it if run leaves it behind.
func grandchild(shape string) string {
	return `sh -c 'echo $$ > "$0"; exec "$@"' "$0" "$@"` + shape
}

// killLeftover SIGKILLs, when the test ends, the process whose pid is in
// pidFile, if any: a slotChild that run failed to stop would otherwise
// hold its lock, and wait for SIGTERM, past the test. Call it after
// start: cleanups run in reverse, and a run's waits for its command.
func killLeftover(t *testing.T, pidFile string) {
	t.Cleanup(func() {
		b, _ := os.ReadFile(pidFile)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// The reviewer's overlap: A's command is a shell whose child, not the
// shell, is the long-lived one; it traps SIGTERM and takes 3 s to exit.
// A's link to etcd is cut. run must stop the whole process group, the
// shell's child included, SIGKILL after the grace, before A's lease could
// expire and B, waiting through a proxy of its own, be granted the slot.
// When only the shell was signalled, it died, its child ran on holding
// the lock, and B's command started beside it.
func TestLostSlotStopsTheGroup(t *testing.T) {
	for _, shape := range []struct{ name, script string }{
		{"then-true", "; true"},
		{"and-wait", " & wait"},
	} {
		t.Run(shape.name, func(t *testing.T) {
			addr := etcdAddr(t)
			pxA, err := etcdtest.NewProxy(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer pxA.Close()
			pxB, err := etcdtest.NewProxy(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer pxB.Close()
			dir := t.TempDir()
			logPath, lockPath, pidFile := filepath.Join(dir, "log"), filepath.Join(dir, "lock"), filepath.Join(dir, "pid")
			pool := poolName(t)
			e := env(t)
			common := []string{"--pool", pool, "--max", "1", "--ttl", "2s"}
			a := start(t, e, append(append([]string{"run", "--etcd", pxA.URL()}, common...),
				"--", "sh", "-c", grandchild(shape.script), pidFile, self(t), childArg, logPath, lockPath, "A", "3s")...)
			if l := a.line(10 * time.Second); l != "started" {
				t.Fatalf("A's command said %q", l)
			}
			b := start(t, e, append(append([]string{"run", "--etcd", pxB.URL(), "--wait", "20s"}, common...), "--", self(t), childArg, logPath, lockPath, "B", "0")...)
			killLeftover(t, pidFile)
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				st := readStatus(t, e, append([]string{"--etcd", addr}, common[:4]...)...)
				if len(st.Waiting) == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("B is not in line: %+v", st)
				}
			}
			cut := time.Now()
			pxA.Cut()
			// B's command prints "started" once it holds the lock; one that
			// found A's grandchild holding it logs "overlap" and waits. (A's
			// stdout, a pipe, ends only when its grandchild is gone: A is
			// waited for after.)
			select {
			case l := <-b.lines:
				if l != "started" {
					t.Errorf("B's command said %q", l)
				}
			case <-time.After(15 * time.Second):
			}
			ev := childEvents(t, logPath)
			if ev["A term"].IsZero() {
				t.Errorf("A's grandchild never got SIGTERM: %v", ev)
			}
			if over, ok := ev["B overlap"]; ok {
				t.Fatalf("B's command started %v after the cut while A's grandchild still ran (log: %v); A's stderr: %s",
					over.Sub(cut).Round(10*time.Millisecond), ev, a.errb)
			}
			if ev["B start"].IsZero() {
				t.Fatalf("B's command did not start: %v; B's stderr: %s", ev, b.errb)
			}
			if code := a.wait(5 * time.Second); code != exitLost {
				t.Errorf("A: exit %d; want %d; stderr: %s", code, exitLost, a.errb)
			}
			if code := b.wait(10 * time.Second); code != 0 {
				t.Errorf("B: exit %d; stderr: %s", code, b.errb)
			}
			t.Logf("A's grandchild got SIGTERM, B's command started %v later; A's stderr: %s",
				ev["B start"].Sub(ev["A term"]).Round(10*time.Millisecond), strings.TrimSpace(a.errb.String()))
		})
	}
}

// A signal run receives goes to its command's whole process group: the
// shell's child gets SIGTERM too, not only the shell, which leaves it
// running when it dies. The command reads its stdin, here a pipe: a
// command in a process group of its own still can.
func TestRunForwardsSignalsToTheGroup(t *testing.T) {
	addr := etcdAddr(t)
	dir := t.TempDir()
	pidFile, marker := filepath.Join(dir, "pid"), filepath.Join(dir, "marker")
	script := `read line; echo "read $line"; ` + grandchild(" & wait")
	// The grandchild: a shell that traps SIGTERM, writes the marker, and
	// exits.
	p := start(t, env(t), "run", "--etcd", addr, "--pool", poolName(t), "--max", "1", "--",
		"sh", "-c", script, pidFile, "sh", "-c", `trap 'echo term > "$0"; exit 0' TERM; echo started; while :; do sleep 0.05; done`, marker)
	killLeftover(t, pidFile)
	if _, err := p.stdin.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if l := p.line(10 * time.Second); l != "read hello" {
		t.Fatalf("command said %q; want it to read its stdin", l)
	}
	if l := p.line(10 * time.Second); l != "started" {
		t.Fatalf("command said %q", l)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	// The child runs its trap once its sleep ends: give it two seconds.
	// (run's stdout, a pipe, ends only when the child is gone too.)
	var b []byte
	for deadline := time.Now().Add(2 * time.Second); string(b) != "term\n" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ = os.ReadFile(marker)
	}
	if string(b) != "term\n" {
		t.Fatalf("the shell's child did not get the SIGTERM sent to run (marker %q)", b)
	}
	p.wait(10 * time.Second)
}
