//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/cli"
)

// The tests build llmslots once and run it as a user would: real
// processes, real signals, real slot files in a temporary directory per
// test. The test binary doubles as a helper program (stamping times,
// trapping signals), chosen by helperEnv.
const helperEnv = "LLMSLOTS_CLI_TEST_HELPER"

// bin is the llmslots binary under test.
var bin string

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helper(os.Args[1:]))
	}
	dir, err := os.MkdirTemp("", "llmslots-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "llmslots")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building llmslots:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// helper runs one helper mode:
//
//	stamp FILE WORD   append "WORD <unix nanoseconds>" to FILE
//	trap [ignore]     print "ready", then "got SIGNAL" for the first of
//	                  SIGINT/SIGTERM/SIGHUP and exit 7; with ignore, ignore
//	                  SIGTERM and wait for stdin to close
func helper(args []string) int {
	switch {
	case len(args) == 3 && args[0] == "stamp":
		f, err := os.OpenFile(args[1], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		// One write of a short line to an O_APPEND file: lines from
		// concurrent writers never interleave.
		if _, err := fmt.Fprintf(f, "%s %d\n", args[2], time.Now().UnixNano()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case len(args) >= 1 && args[0] == "trap":
		if len(args) == 2 && args[1] == "ignore" {
			signal.Ignore(syscall.SIGTERM)
			fmt.Println("ready")
			io.Copy(io.Discard, os.Stdin)
			return 0
		}
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		fmt.Println("ready")
		fmt.Println("got", <-sigs)
		return 7
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", args)
	return 2
}

// testEnv is the environment every process of a test runs in: its own
// slot directory, no LLMSLOTS_MAX, and the helper reachable as $HELPER.
type testEnv struct {
	t   *testing.T
	dir string // the default pool's directory (LLMSLOTS_DIR)
	env []string
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: t.TempDir()}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LLMSLOTS_") && !strings.HasPrefix(kv, "GORACE=") {
			e.env = append(e.env, kv)
		}
	}
	helperPath, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e.env = append(e.env,
		"LLMSLOTS_DIR="+e.dir,
		"LLMSLOTS="+bin,
		"HELPER="+helperPath,
		helperEnv+"=1", // only the test binary reads it
		// The helper is the test binary: a race-enabled one sleeps 1 s at
		// exit unless told not to.
		"GORACE=atexit_sleep_ms=0",
	)
	return e
}

// set returns e's environment with kv added (replacing the same key).
func (e *testEnv) with(kvs ...string) []string {
	env := append([]string(nil), e.env...)
	for _, kv := range kvs {
		key, _, _ := strings.Cut(kv, "=")
		for i, old := range env {
			if strings.HasPrefix(old, key+"=") {
				env = append(env[:i:i], env[i+1:]...)
				break
			}
		}
		env = append(env, kv)
	}
	return env
}

// result is a finished llmslots run.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// run runs llmslots with args to the end (at most 30 s).
func (e *testEnv) run(args ...string) result {
	return e.runEnv(e.env, "", args...)
}

func (e *testEnv) runEnv(env []string, stdin string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		r.code = cli.ExitStatus(exitErr.ProcessState)
	default:
		e.t.Fatalf("llmslots %q: %v", args, err)
	}
	if ctx.Err() != nil {
		e.t.Fatalf("llmslots %q did not finish within 30s", args)
	}
	return r
}

// sh runs a shell script in e's environment.
func (e *testEnv) sh(script string, env ...string) (string, error) {
	e.t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = e.with(env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// proc is a long-running llmslots whose stdin we hold: the commands the
// tests run under it exit when stdin closes.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	errOut *bufio.Scanner
	done   chan struct{}
	code   int
}

// start starts llmslots with args; its stdout is read line by line.
func (e *testEnv) start(args ...string) *proc {
	e.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = e.env
	// Pipes of our own, not cmd.StdinPipe: Wait closes those, and the
	// command must outlive a killed llmslots.
	ir, stdin, err := os.Pipe()
	if err != nil {
		e.t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		e.t.Fatal(err)
	}
	er, ew, err := os.Pipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = ir, w, ew
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	ir.Close()
	w.Close()
	ew.Close()
	p := &proc{t: e.t, cmd: cmd, stdin: stdin, out: bufio.NewScanner(r), errOut: bufio.NewScanner(er), done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			p.code = cli.ExitStatus(exitErr.ProcessState)
		}
		close(p.done)
	}()
	e.t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		<-p.done
		r.Close()
		er.Close()
	})
	return p
}

// line returns the next line the process (or its command) wrote.
func (p *proc) line() string {
	p.t.Helper()
	if !p.out.Scan() {
		p.t.Fatalf("llmslots %q: no more output (%v)", p.cmd.Args, p.out.Err())
	}
	return p.out.Text()
}

// errLine returns the next line the process wrote on stderr.
func (p *proc) errLine() string {
	p.t.Helper()
	if !p.errOut.Scan() {
		p.t.Fatalf("llmslots %q: no more stderr (%v)", p.cmd.Args, p.errOut.Err())
	}
	return p.errOut.Text()
}

// expectEOF reads until every writer of the process's stdout is gone.
func (p *proc) expectEOF() {
	p.t.Helper()
	for p.out.Scan() {
	}
}

// wait waits for llmslots itself to exit and returns its status.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(20 * time.Second):
		p.t.Fatalf("llmslots %q did not exit", p.cmd.Args)
		return -1
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// maxOverlap reads a log of "start T" / "end T" lines and returns how many
// intervals overlapped at most, and how many intervals there were.
func maxOverlap(t *testing.T, log string) (most, n int) {
	t.Helper()
	type event struct {
		at    int64
		delta int
	}
	var events []event
	starts, ends := 0, 0
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		word, num, _ := strings.Cut(l, " ")
		at, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			t.Fatalf("bad log line %q", l)
		}
		switch word {
		case "start":
			events = append(events, event{at, +1})
			starts++
		case "end":
			events = append(events, event{at, -1})
			ends++
		default:
			t.Fatalf("bad log line %q", l)
		}
	}
	if starts != ends {
		t.Fatalf("log has %d starts and %d ends:\n%s", starts, ends, log)
	}
	// Ends sort before starts at the same instant: touching is not overlap.
	sort.Slice(events, func(i, j int) bool {
		if events[i].at != events[j].at {
			return events[i].at < events[j].at
		}
		return events[i].delta < events[j].delta
	})
	cur := 0
	for _, ev := range events {
		cur += ev.delta
		most = max(most, cur)
	}
	return most, starts
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
