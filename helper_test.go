//go:build unix

package llmslots

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
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
// of the tests.
const helperEnv = "LLMSLOTS_TEST_HELPER"

// noSparesEnv, set for a helper, makes it create every slot file itself
// (the classic path, and the reference's) instead of using a spare.
const noSparesEnv = "LLMSLOTS_TEST_NOSPARES"

func TestMain(m *testing.M) {
	if os.Getenv(noSparesEnv) != "" {
		testNoSpares = true // this helper takes slots the classic way
	}
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

func runHelper(mode string) int {
	if mode == "alive" {
		// Judge a pid from this (perhaps unprivileged) process.
		pid, _ := strconv.Atoi(os.Getenv("HELPER_PID"))
		fmt.Println("kill0", unix.Kill(pid, 0), "alive", proc.Alive(pid))
		return 0
	}
	dir := os.Getenv(EnvDir)
	max, _ := strconv.Atoi(os.Getenv("HELPER_MAX"))
	p, err := NewPool(dir, WithLabel("helper "+mode))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	switch mode {
	case "hold":
		// Take a slot, say which, hold it until stdin closes.
		g, err := p.Acquire(max, 10*time.Second)
		if err != nil {
			fmt.Println("error", err)
			return 3
		}
		fmt.Println("held", g.SlotID())
		io.Copy(io.Discard, os.Stdin)
		if err := g.Release(); err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("released")
		return 0
	case "handon":
		// Take a slot, hand it to a child that sleeps, say the child's
		// pid, then wait (to be killed).
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
	case "cycle":
		// Acquire/hold/release cycles; print each holding interval in
		// CLOCK_MONOTONIC nanoseconds, which all processes share, taken
		// after acquiring and before releasing.
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
	default:
		if code, ok := runAdversarialHelper(mode); ok {
			return code
		}
	}
	fmt.Println("unknown helper mode", mode)
	return 2
}

func monotonic() int64 { return clock.Monotonic() }

// helper is a running helper process.
type helper struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// startHelper runs the test binary in a helper mode on pool dir.
func startHelper(t *testing.T, mode, dir string, max int, env ...string) *helper {
	t.Helper()
	return launchHelper(t, helperCmd(os.Args[0], mode, dir, max, env...))
}

// helperCmd is the command that runs bin (a copy of the test binary) in a
// helper mode on pool dir.
func helperCmd(bin, mode, dir string, max int, env ...string) *exec.Cmd {
	cmd := exec.Command(bin, "-test.run=^$")
	// A race-enabled helper sleeps 1 s at exit unless told not to.
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, EnvDir+"="+dir, "HELPER_MAX="+strconv.Itoa(max), "GORACE=atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	return cmd
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

// withoutSpares makes the test's acquires create their slot files the
// classic way.
func withoutSpares(t *testing.T) {
	t.Helper()
	testNoSpares = true
	t.Cleanup(func() { testNoSpares = false })
}

// spareNames lists the spare files in dir.
func spareNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), sparePrefix) {
			names = append(names, e.Name())
		}
	}
	return names
}
