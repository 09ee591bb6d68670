//go:build unix

package llmslots

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/clock"
	"github.com/llmslots/llmslots/internal/proc"
	"golang.org/x/sys/unix"
)

// The tests run real processes: the test binary re-executes itself with
// LLMSLOTS_TEST_HELPER set to a mode, and TestMain runs that mode instead
// of the tests. helperCmd builds every such command.
const helperEnv = "LLMSLOTS_TEST_HELPER"

// helperModes are the modes a helper runs, by the name helperEnv gives.
// Each reads its pool from LLMSLOTS_DIR and its max from HELPER_MAX (as
// helperCmd sets them), reports on stdout, and returns the exit status.
var helperModes = map[string]func() int{
	"hold":          holdHelper,         // take a slot, say "held N", hold it until stdin closes
	"handon":        handonHelper,       // take a slot, hand it to a sleeping child, say "child PID", wait to be killed
	"cycle":         cycleHelper,        // HELPER_CYCLES acquire/hold/release cycles, each said as "interval SLOT START END"
	"alive":         aliveHelper,        // judge HELPER_PID from this process: "kill0 ERR alive BOOL"
	"late-acquire":  lateAcquireHelper,  // wait for the file LATE_GO, then Acquire for 1.5 s: "held N nested B", "busy" or "error"
	"inherit-child": inheritChildHelper, // Acquire(1, 0), perhaps inside a slot inherited, and say how (inherit_test.go)
	"chaos":         chaosHelper,        // random acquire/hold/release cycles, logged line by line (chaos_helpers_test.go)
	"ref-cycle":     refCycleHelper,     // the same with the reference protocol (chaos_helpers_test.go)
	"ref-hold":      refHoldHelper,      // one slot by the reference protocol, held until stdin closes (chaos_helpers_test.go)
	"adv-ops":       runOps,             // the operations HELPER_OPS lists, one JSON report each (adversarial_helper_test.go)
	"adv-eintr":     runSignalStorm,     // acquire/release in goroutines under a storm of signals (adversarial_helper_test.go)
	"early-release": earlyReleaseHelper, // hand the slot to HELPER_CMD, release it at once, say "released", wait for the child
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		run := helperModes[mode]
		if run == nil {
			fmt.Println("unknown helper mode", mode)
			os.Exit(2)
		}
		os.Exit(run())
	}
	stop := sayAlive("github.com/llmslots/llmslots")
	code := m.Run()
	stop()
	os.Exit(code)
}

// helperCmd is the command that runs bin (the test binary, os.Args[0], or
// a copy of it) as a helper in mode on pool dir ("": LLMSLOTS_DIR is left
// as it is) with max slots, and the extra environment env. Every helper
// is started from one.
func helperCmd(bin, mode, dir string, max int, env ...string) *exec.Cmd {
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	if dir != "" {
		cmd.Env = append(cmd.Env, EnvDir+"="+dir)
	}
	// A race-enabled helper sleeps 1 s at exit unless told not to.
	cmd.Env = append(cmd.Env, "HELPER_MAX="+strconv.Itoa(max), "GORACE=atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// helperPool is the pool a helper in mode works on, and its max. If the
// pool cannot be had, it says so and ok is false.
func helperPool(mode string) (p *Pool, max int, ok bool) {
	dir := os.Getenv(EnvDir)
	max, _ = strconv.Atoi(os.Getenv("HELPER_MAX"))
	p, err := NewPool(dir, WithLabel("helper "+mode))
	if err != nil {
		fmt.Println("error", err)
		return nil, 0, false
	}
	return p, max, true
}

// holdHelper takes a slot, says which, and holds it until stdin closes.
func holdHelper() int {
	return hold("hold", func(g *Guard) string { return fmt.Sprint("held ", g.SlotID()) })
}

// hold takes a slot, says so in said's words, holds it until stdin
// closes, and says "released".
func hold(mode string, said func(*Guard) string) int {
	p, max, ok := helperPool(mode)
	if !ok {
		return 1
	}
	g, err := p.Acquire(max, 10*time.Second)
	if err != nil {
		fmt.Println("error", err)
		return 3
	}
	fmt.Println(said(g))
	io.Copy(io.Discard, os.Stdin)
	if err := g.Release(); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("released")
	return 0
}

// handonHelper takes a slot, hands it to a child that sleeps, says the
// child's pid, then waits (to be killed).
func handonHelper() int {
	p, max, ok := helperPool("handon")
	if !ok {
		return 1
	}
	g, err := p.Acquire(max, 10*time.Second)
	if err != nil {
		fmt.Println("error", err)
		return 3
	}
	child := exec.Command("sleep", "30")
	if err := g.Inherit(child); err != nil {
		fmt.Println("error", err)
		return 1
	}
	if err := child.Start(); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("child", child.Process.Pid)
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// earlyReleaseHelper takes one slot of a pool of 1 (the default pool),
// starts HELPER_CMD as a child through Guard.Command, and releases the
// slot at once, before the child ends, as a defer that fires on an early
// return would; then it says "released" and waits for the child.
func earlyReleaseHelper() int {
	g, err := Acquire(1, 10*time.Second)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	cmd := g.Command(os.Getenv("HELPER_CMD"))
	if err := cmd.Start(); err != nil {
		fmt.Println("error", err)
		return 1
	}
	if err := g.Release(); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("released")
	if err := cmd.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// cycleHelper runs acquire/hold/release cycles; it prints each holding
// interval in CLOCK_MONOTONIC nanoseconds, which all processes share,
// taken after acquiring and before releasing.
func cycleHelper() int {
	p, max, ok := helperPool("cycle")
	if !ok {
		return 1
	}
	cycles, _ := strconv.Atoi(os.Getenv("HELPER_CYCLES"))
	w := bufio.NewWriter(os.Stdout)
	for range cycles {
		g, err := p.Acquire(max, 30*time.Second)
		if err != nil {
			fmt.Fprintln(w, "error", err)
			w.Flush()
			return 3
		}
		start := monotonic()
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		end := monotonic()
		if err := g.Release(); err != nil {
			fmt.Fprintln(w, "error", err)
			w.Flush()
			return 1
		}
		fmt.Fprintln(w, "interval", g.SlotID(), start, end)
	}
	w.Flush()
	return 0
}

// aliveHelper judges a pid from this (perhaps unprivileged) process.
func aliveHelper() int {
	pid, _ := strconv.Atoi(os.Getenv("HELPER_PID"))
	fmt.Println("kill0", unix.Kill(pid, 0), "alive", proc.Alive(pid))
	return 0
}

// lateAcquireHelper waits until the file $LATE_GO exists, then calls
// Acquire(max, 1500ms) and prints "held N nested B" (holding it for
// 300 ms) or "busy" / "error".
func lateAcquireHelper() int {
	goFile := os.Getenv("LATE_GO")
	for {
		if _, err := os.Stat(goFile); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p, err := NewPool(os.Getenv(EnvDir))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	g, err := p.Acquire(envInt("HELPER_MAX", 1), 1500*time.Millisecond)
	switch {
	case err == nil:
		fmt.Println("held", g.SlotID(), "nested", g.nested())
		time.Sleep(300 * time.Millisecond)
		g.Release()
	case errors.Is(err, ErrBusy):
		fmt.Println("busy")
	default:
		fmt.Println("error", err)
	}
	return 0
}

// startHelper runs the test binary in a helper mode on pool dir.
func startHelper(t *testing.T, mode, dir string, max int, env ...string) *helper {
	t.Helper()
	return launchHelper(t, helperCmd(os.Args[0], mode, dir, max, env...))
}

// helper is a running helper process.
type helper struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// launchHelper starts a helper command with its stdin and stdout piped,
// and kills it when the test ends.
func launchHelper(t *testing.T, cmd *exec.Cmd) *helper {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{t: t, cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	t.Cleanup(func() {
		h.cmd.Process.Kill()
		h.cmd.Wait()
	})
	return h
}

// line returns the helper's next line of output.
func (h *helper) line() string {
	h.t.Helper()
	if !h.out.Scan() {
		h.t.Fatalf("helper %d: no more output (%v)", h.cmd.Process.Pid, h.out.Err())
	}
	return h.out.Text()
}

// held waits for a "hold" helper to take its slot and returns the id.
func (h *helper) held() int {
	h.t.Helper()
	l := h.line()
	id, err := strconv.Atoi(strings.TrimPrefix(l, "held "))
	if !strings.HasPrefix(l, "held ") || err != nil {
		h.t.Fatalf("helper %d: want \"held N\", got %q", h.cmd.Process.Pid, l)
	}
	return id
}

// kill SIGKILLs the helper and waits until it is gone.
func (h *helper) kill() {
	h.t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		h.t.Fatal(err)
	}
	h.cmd.Wait()
}

func (h *helper) pid() int { return h.cmd.Process.Pid }

// Shared by the tests and the helpers.

func newTestPool(t *testing.T, opts ...Option) *Pool {
	t.Helper()
	p, err := NewPool(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustAcquire(t *testing.T, p *Pool, max int, wait time.Duration) *Guard {
	t.Helper()
	g, err := p.Acquire(max, wait)
	if err != nil {
		t.Fatalf("Acquire(%d, %v): %v", max, wait, err)
	}
	t.Cleanup(func() { g.Release() })
	return g
}

func monotonic() int64 { return clock.Monotonic() }

// emit writes one line to stdout in a single write. If the test is gone
// the pipe is broken and SIGPIPE ends the helper, as it should.
func emit(format string, args ...any) {
	os.Stdout.Write([]byte(fmt.Sprintf(format, args...) + "\n"))
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

// randMs is a random duration of 0..n milliseconds, in microsteps.
func randMs(n int) time.Duration {
	return time.Duration(rand.IntN(n*1000+1)) * time.Microsecond
}

// holdForeign makes a slot file at path with content and holds its lock
// from this process through its own open file, as another program (or a
// process in another container) sharing the directory would.
func holdForeign(t *testing.T, path string, content []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
}

// linuxOnly skips a test that has been tried on Linux only.
func linuxOnly(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("tried on Linux only")
	}
}
