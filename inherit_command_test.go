//go:build linux

package llmslots

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeCodex is a `codex` for PATH: it logs "start <pid> <ns>" and
// "end <pid> <ns>" (wall-clock nanoseconds, which every process on the
// host shares) around a sleep of $CODEX_SECS, printing $CODEX_SAYS on
// stderr at the end if it is set. The log is the children's
// own account of when they ran, independent of the library's view.
const fakeCodex = `#!/bin/sh
echo "start $$ $(date +%s%N)" >> "$CODEX_LOG"
sleep "$CODEX_SECS"
[ -z "$CODEX_SAYS" ] || printf '%s\n' "$CODEX_SAYS" >&2
echo "end $$ $(date +%s%N)" >> "$CODEX_LOG"
`

// codexWorld is a slot directory, a PATH with the fake codex first, and
// the log its runs write.
type codexWorld struct {
	t   *testing.T
	dir string // the default pool's directory
	bin string // holds codex and the programs built for the test
	log string
}

func newCodexWorld(t *testing.T) *codexWorld {
	t.Helper()
	w := &codexWorld{t: t, dir: t.TempDir(), bin: t.TempDir()}
	w.log = filepath.Join(w.bin, "codex.log")
	if err := os.WriteFile(filepath.Join(w.bin, "codex"), []byte(fakeCodex), 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

// build compiles the program at pkg (relative to this package) into w.bin.
func (w *codexWorld) build(pkg string) string {
	w.t.Helper()
	out := filepath.Join(w.bin, "prog-"+filepath.Base(pkg))
	build := exec.Command("go", "build", "-o", out, pkg)
	if msg, err := build.CombinedOutput(); err != nil {
		w.t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
	return out
}

// command runs prog as a user would, in w, its codex sleeping secs.
func (w *codexWorld) command(secs float64, prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), EnvDir+"="+w.dir, "PATH="+w.bin+":"+os.Getenv("PATH"),
		"CODEX_LOG="+w.log, "CODEX_SECS="+strconv.FormatFloat(secs, 'f', -1, 64))
	return cmd
}

// run is one codex run, as its log tells.
type run struct {
	pid        int
	start, end int64 // 0: not logged (yet)
}

// runs reads the log.
func (w *codexWorld) runs() []run {
	w.t.Helper()
	data, err := os.ReadFile(w.log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		w.t.Fatal(err)
	}
	byPID := map[int]*run{}
	var order []int
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			w.t.Fatalf("bad log line %q", sc.Text())
		}
		pid, _ := strconv.Atoi(f[1])
		at, _ := strconv.ParseInt(f[2], 10, 64)
		r := byPID[pid]
		if r == nil {
			r = &run{pid: pid}
			byPID[pid] = r
			order = append(order, pid)
		}
		if f[0] == "start" {
			r.start = at
		} else {
			r.end = at
		}
	}
	out := make([]run, 0, len(order))
	for _, pid := range order {
		out = append(out, *byPID[pid])
	}
	return out
}

// waitFor polls the log until cond holds, or fails the test.
func (w *codexWorld) waitFor(what string, limit time.Duration, cond func([]run) bool) []run {
	w.t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		rs := w.runs()
		if cond(rs) {
			return rs
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no %s within %v; runs: %+v", what, limit, rs)
		}
	}
}

// mostAtOnce returns how many runs overlapped at most. A run that ends
// at the instant another starts does not overlap it.
func mostAtOnce(rs []run) int {
	type event struct {
		at    int64
		delta int
	}
	var evs []event
	for _, r := range rs {
		evs = append(evs, event{r.start, +1}, event{r.end, -1})
	}
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].at != evs[j].at {
			return evs[i].at < evs[j].at
		}
		return evs[i].delta < evs[j].delta
	})
	most, cur := 0, 0
	for _, e := range evs {
		cur += e.delta
		most = max(most, cur)
	}
	return most
}

// The README's first snippet, as a whole program (examples/codex), on a
// pool of 3: its parent is stopped by a signal to its pid alone while its
// codex runs, then three more start at once. The killed parent's codex
// keeps its slot, so never more than 3 codex run at once, by their own
// log. With exec.Command in place of g.Command, 4 ran at once.
func TestCommandKeepsTheLimitWhenTheParentIsKilled(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			w := newCodexWorld(t)
			prog := w.build("./examples/codex")
			first := w.command(5, prog, "review", "the", "diff")
			if err := first.Start(); err != nil {
				t.Fatal(err)
			}
			w.waitFor("first codex", 10*time.Second, func(rs []run) bool { return len(rs) == 1 })
			first.Process.Signal(sig)
			first.Wait()
			var rest []*exec.Cmd
			for range 3 {
				c := w.command(1, prog, "review")
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				rest = append(rest, c)
			}
			for _, c := range rest {
				if err := c.Wait(); err != nil {
					t.Errorf("a later program failed: %v", err)
				}
			}
			rs := w.waitFor("all codex ends", 10*time.Second, func(rs []run) bool {
				if len(rs) != 4 {
					return false
				}
				for _, r := range rs {
					if r.end == 0 {
						return false
					}
				}
				return true
			})
			if n := mostAtOnce(rs); n > 3 {
				t.Errorf("%d codex ran at once on max 3: %+v", n, rs)
			}
			// The killed parent's codex still ran when the others came, so
			// one of them waited for another to end.
			later := append([]run(nil), rs[1:]...)
			sort.Slice(later, func(i, j int) bool { return later[i].start < later[j].start })
			if later[2].start < min(later[0].end, later[1].end) {
				t.Errorf("the third later codex did not wait: %+v", rs)
			}
		})
	}
}

// The README's first snippet tells the pool what codex said: a usage
// limit on codex's stderr pauses the pool until the reset it names, and
// the program still shows codex's stderr.
func TestCodexExampleReportsTheLimit(t *testing.T) {
	w := newCodexWorld(t)
	prog := w.build("./examples/codex")
	says := "ERROR: You've hit your usage limit. Upgrade to Pro or try again in 2 hours."
	cmd := w.command(0, prog, "review")
	cmd.Env = append(cmd.Env, "CODEX_SAYS="+says)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), says) {
		t.Fatalf("examples/codex: %v\n%s", err, out)
	}
	p, _ := NewPool(w.dir)
	st, err := p.ReadStatus(3)
	if err != nil {
		t.Fatal(err)
	}
	if st.Throttle == nil || st.Throttle.LastReport == nil || st.Throttle.LastReport.Kind != "usage" || st.Limit != 3 {
		t.Fatalf("after codex's usage limit: limit %d, %+v", st.Limit, st.Throttle)
	}
	if left := time.Until(st.Throttle.PausedUntil); left < 2*time.Hour-time.Minute || left > 2*time.Hour {
		t.Errorf("paused for %v, want 2 h", left)
	}
}

// Release before the child ends (a defer that fires on an early return)
// hands the slot over: nobody else gets it while the child runs, and it
// is free at once when the child ends.
func TestReleaseWhileTheChildRunsHandsTheSlotOver(t *testing.T) {
	w := newCodexWorld(t)
	parent := w.command(2, os.Args[0], "-test.run=^$")
	parent.Env = append(parent.Env, helperEnv+"=early-release", "HELPER_CMD=codex", "GORACE=atexit_sleep_ms=0")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Wait()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "released\n" {
		t.Fatalf("parent said %q", line)
	}
	p, err := NewPool(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if g, err := p.Acquire(1, 0); !errors.Is(err, ErrBusy) {
			g.Release()
			t.Fatalf("got the slot (%v) while the child it was handed to runs", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	g, err := p.Acquire(1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := time.Now().UnixNano()
	g.Release()
	rs := w.runs()
	if len(rs) != 1 || rs[0].end == 0 || got < rs[0].end {
		t.Fatalf("took the slot at %d; codex ran %+v", got, rs)
	}
	t.Logf("slot taken %v after the child ended", time.Duration(got-rs[0].end))
}

// CommandContext stops the child when the context ends (SIGTERM, which it
// handles here), and the slot is free only once the child is gone.
func TestCommandContextStopsTheChildAndKeepsTheSlotUntilItIsGone(t *testing.T) {
	p := newTestPool(t)
	g := mustAcquire(t, p, 1, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := g.CommandContext(ctx, "sh", "-c", `trap 'sleep 0.5; exit 3' TERM; echo ready; while :; do sleep 0.05; done`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	bufio.NewReader(out).ReadString('\n')
	cancel()
	if err := g.Release(); err != nil {
		t.Fatal(err)
	}
	if g2, err := p.Acquire(1, 0); !errors.Is(err, ErrBusy) {
		g2.Release()
		t.Fatalf("got the slot (%v) while the cancelled child still runs", err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("child ended with %v; want exit 3 from its SIGTERM trap", err)
	}
	g2, err := p.Acquire(1, 5*time.Second)
	if err != nil {
		t.Fatalf("slot not free after the child ended: %v", err)
	}
	g2.Release()
}

// Command puts what stops it in cmd.Err, as exec.Command does with a
// failed lookup: Run returns it and nothing runs.
func TestCommandErrorsSurfaceAtStart(t *testing.T) {
	p := newTestPool(t)
	g := mustAcquire(t, p, 1, 0)
	g.Release()
	if err := g.Command("true").Run(); !errors.Is(err, ErrInvalid) {
		t.Errorf("released guard: Run = %v; want ErrInvalid", err)
	}
	g = mustAcquire(t, p, 1, 0)
	defer g.Release()
	//lint:ignore SA1012 a nil context is the bad input under test
	if err := g.CommandContext(nil, "true").Run(); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil context: Run = %v; want ErrInvalid", err)
	}
	if err := g.Command("no-such-program-llmslots").Run(); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("missing program: Run = %v; want exec.ErrNotFound", err)
	}
	var nilGuard *Guard
	if err := nilGuard.Command("true").Run(); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil guard: Run = %v; want ErrInvalid", err)
	}
	if out, err := g.Command("sh", "-c", "echo $LLMSLOTS_INHERITED").Output(); err != nil || !strings.Contains(string(out), "slot=0;dir="+p.Dir()) {
		t.Errorf("child's environment: %q, %v", out, err)
	}
}
