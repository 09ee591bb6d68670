//go:build unix

package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
)

func TestReleaseRefusesHeldSlot(t *testing.T) {
	e := newEnv(t)
	h := e.holder("--max", "1")
	r := e.run("release", "--slot", "0")
	if r.code != 1 || !strings.Contains(r.stderr, "held by pid "+strconv.Itoa(h.pid())) || !strings.Contains(r.stderr, "--kill") {
		t.Fatalf("release of a held slot: exit %d, stderr %q; want 1 naming pid %d", r.code, r.stderr, h.pid())
	}
	if st := readStatus(t, e, 1); st.Slots[0].State != llmslots.StateHeld {
		t.Fatalf("after a refused release slot 0 is %s", st.Slots[0].State)
	}
	// A free slot: nothing to do, and no error.
	if r := e.run("release", "--slot", "5"); r.code != 0 || !strings.Contains(r.stdout, "slot 5: free") {
		t.Fatalf("release of a free slot: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

// --kill: SIGTERM to the holder, which forwards it to its command; both
// exit and release returns with the slot free.
func TestReleaseKill(t *testing.T) {
	e := newEnv(t)
	h := e.holder("--max", "1")
	r := e.run("release", "--slot", "0", "--kill", "--grace", "10s")
	if r.code != 0 {
		t.Fatalf("release --kill: exit %d: %s", r.code, r.stderr)
	}
	if r.took > 5*time.Second {
		t.Errorf("release --kill took %v for a holder that exits on SIGTERM", r.took)
	}
	if code := h.wait(); code != 128+15 {
		t.Errorf("the holder exited %d, want 143 (its command died of the forwarded SIGTERM)", code)
	}
	if st := readStatus(t, e, 1); st.Slots[0].State != llmslots.StateFree {
		t.Fatalf("after release --kill slot 0 is %s; want free", st.Slots[0].State)
	}
}

// A command that ignores SIGTERM gets SIGKILL after the grace period; so
// does every other process holding the slot's lock (Linux), since killing
// llmslots alone would leave the slot with its command.
func TestReleaseKillAfterGrace(t *testing.T) {
	e := newEnv(t)
	h := e.start("run", "--max", "1", "--", e.helper(), "trap", "ignore")
	if l := h.line(); l != "ready" {
		t.Fatalf("holder said %q", l)
	}
	r := e.run("release", "--slot", "0", "--kill", "--grace", "300ms")
	if r.code != 0 {
		t.Fatalf("release --kill: exit %d: %s\n%s", r.code, r.stdout, r.stderr)
	}
	if r.took < 300*time.Millisecond || !strings.Contains(r.stdout, "SIGKILL") {
		t.Errorf("release --kill returned after %v without SIGKILL: %q", r.took, r.stdout)
	}
	if code := h.wait(); code != 128+9 {
		t.Errorf("the holder exited %d, want 137", code)
	}
	h.expectEOF() // the command is gone too
	if st := readStatus(t, e, 1); st.Slots[0].State != llmslots.StateFree {
		t.Fatalf("after release --kill slot 0 is %s; want free", st.Slots[0].State)
	}
}

// crash leaves a slot file behind: a holder that replaced itself with its
// command (--exec) is SIGKILLed, so nobody deletes the file.
func crash(t *testing.T, e *testEnv, max string) int {
	t.Helper()
	p := e.start("run", "--exec", "--max", max, "--", "sh", "-c", "echo ready; exec cat")
	if l := p.line(); l != "ready" {
		t.Fatalf("holder said %q", l)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait()
	return p.pid()
}

func TestCleanupRemovesCrashedHoldersFile(t *testing.T) {
	e := newEnv(t)
	h := e.holder("--max", "2") // slot 0: a held slot, never touched
	dead := crash(t, e, "2")    // slot 1
	path := filepath.Join(e.dir, "slot-1.lock")
	if st := readStatus(t, e, 2); st.Slots[1].State != llmslots.StateStale || st.Slots[1].PID != dead {
		t.Fatalf("after the crash slot 1 is %s by %d; want stale by %d", st.Slots[1].State, st.Slots[1].PID, dead)
	}

	r := e.run("cleanup", "--dry-run", "--max", "2")
	if r.code != 0 || !strings.Contains(r.stdout, "would remove slot 1") || !strings.Contains(r.stdout, "dead pid "+strconv.Itoa(dead)) {
		t.Fatalf("cleanup --dry-run: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("--dry-run removed the file: %v", err)
	}
	r = e.run("cleanup", "--max", "2")
	if r.code != 0 || !strings.Contains(r.stdout, "removed slot 1") || strings.Contains(r.stdout, "slot 0") {
		t.Fatalf("cleanup: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("cleanup left the file: %v", err)
	}
	st := readStatus(t, e, 2)
	if st.Slots[1].State != llmslots.StateFree || st.Slots[0].State != llmslots.StateHeld || st.Slots[0].PID != h.pid() {
		t.Fatalf("after cleanup: %+v", st.Slots)
	}
	if r := e.run("cleanup", "--max", "2"); !strings.Contains(r.stdout, "no stale slot files") {
		t.Fatalf("second cleanup: %q", r.stdout)
	}
	h.stdin.Close()
	h.wait()
	// release removes a stale file too.
	crash(t, e, "1")
	if r := e.run("release", "--slot", "0"); r.code != 0 || !strings.Contains(r.stdout, "removed the file") {
		t.Fatalf("release of a stale slot: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

// --exec: llmslots becomes the command (same pid, no parent left behind),
// the slot file names it, and the slot lasts exactly as long as it does.
func TestExecKeepsSlotForCommandsLifetime(t *testing.T) {
	e := newEnv(t)
	p := e.start("run", "--exec", "--max", "1", "--label", "exec'd", "--", "sh", "-c", "echo $$; exec cat")
	pid, err := strconv.Atoi(p.line())
	if err != nil {
		t.Fatal(err)
	}
	if pid != p.pid() {
		t.Fatalf("the command runs as pid %d, llmslots was %d: a parent stayed behind", pid, p.pid())
	}
	st := readStatus(t, e, 1)
	s := st.Slots[0]
	if s.State != llmslots.StateHeld || s.PID != pid || !strings.HasPrefix(s.Command, "sh -c echo $$") || s.Label != "exec'd" {
		t.Fatalf("slot 0 under --exec: %+v", s)
	}
	if r := e.run("run", "--max", "1", "--wait", "0", "--", "true"); r.code != 75 {
		t.Fatalf("a second run got the slot (exit %d) while the exec'd command holds it", r.code)
	}
	p.stdin.Close()
	if code := p.wait(); code != 0 {
		t.Fatalf("the command exited %d", code)
	}
	r := e.run("run", "--max", "1", "--wait", "0", "--", "true")
	if r.code != 0 {
		t.Fatalf("after the exec'd command exited: exit %d: %s", r.code, r.stderr)
	}
}

// Nested acquisition with max=1 through child processes: llmslots under
// llmslots, with and without --exec, gets its parent's slot at once.
func TestNestedRunGetsParentsSlot(t *testing.T) {
	e := newEnv(t)
	for _, outer := range [][]string{
		{"run", "--max", "1", "--"},
		{"run", "--exec", "--max", "1", "--"},
		{"run", "--max", "1", "--", "sh", "-c", `exec "$0" "$@"`}, // through a shell
		// Another pool's slot in between, with and without --exec.
		{"run", "--max", "1", "--", bin, "run", "--pool", "other", "--max", "1", "--"},
		{"run", "--exec", "--max", "1", "--", bin, "run", "--exec", "--pool", "other", "--max", "1", "--"},
	} {
		args := append(append([]string{}, outer...), bin, "run", "--max", "1", "--wait", "0", "--", "sh", "-c", "echo inner $LLMSLOTS_INHERITED")
		r := e.run(args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "inner fd=") || !strings.Contains(r.stdout, ";dir="+e.dir) {
			t.Fatalf("llmslots %q: exit %d, %q %q", args, r.code, r.stdout, r.stderr)
		}
		if r.took > 5*time.Second {
			t.Errorf("llmslots %q took %v", args, r.took)
		}
	}
	// The inherited slot is the parent's: the nested run's exit leaves it
	// held until the outer run ends.
	p := e.start("run", "--max", "1", "--", "sh", "-c", `"$LLMSLOTS" run --max 1 --wait 0 -- true; echo inner $?; exec cat`)
	if l := p.line(); l != "inner 0" {
		t.Fatalf("inner run: %q", l)
	}
	if st := readStatus(t, e, 1); st.Slots[0].State != llmslots.StateHeld || st.Slots[0].PID != p.pid() {
		t.Fatalf("after the inner run: %+v", st.Slots[0])
	}
	p.stdin.Close()
	p.wait()
	if st := readStatus(t, e, 1); st.Slots[0].State != llmslots.StateFree {
		t.Fatalf("after the outer run: %s", st.Slots[0].State)
	}
}

// The shell script: 6 parallel jobs, 2 slots. Each job stamps its
// own start and end; never more than 2 may overlap.
func TestShellScriptSixJobsTwoSlots(t *testing.T) {
	e := newEnv(t)
	log := filepath.Join(t.TempDir(), "log")
	out, err := e.sh(`
for i in 1 2 3 4 5 6; do
	"$LLMSLOTS" run --max 2 -- sh -c '"$HELPER" stamp "$LOG" start; sleep 0.3; "$HELPER" stamp "$LOG" end' &
done
wait
`, "LOG="+log)
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	most, n := maxOverlap(t, readFile(t, log))
	if n != 6 {
		t.Fatalf("%d jobs ran, want 6", n)
	}
	if most != 2 {
		t.Fatalf("at most %d jobs overlapped; want 2 (the limit, and reached)", most)
	}
}

// When the recorded holder is gone but its command still holds the slot
// (llmslots run was SIGKILLed), release --kill stops the processes that
// hold the lock, found through /proc.
func TestReleaseKillFindsHandedOnHolder(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("lock holders are found through /proc on Linux only")
	}
	e := newEnv(t)
	p := e.start("run", "--max", "1", "--", "sh", "-c", "echo $$; exec cat")
	child, _ := strconv.Atoi(p.line())
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait()
	r := e.run("release", "--slot", "0", "--kill", "--grace", "10s")
	if r.code != 0 || !strings.Contains(r.stdout, "SIGTERM to pid "+strconv.Itoa(child)) {
		t.Fatalf("release --kill: exit %d: %q %q", r.code, r.stdout, r.stderr)
	}
	if r.took > 5*time.Second {
		t.Errorf("release --kill took %v; the command exits on SIGTERM", r.took)
	}
	p.expectEOF()
	if st := readStatus(t, e, 1); st.Slots[0].State != llmslots.StateFree {
		t.Fatalf("after release --kill slot 0 is %s", st.Slots[0].State)
	}
}
