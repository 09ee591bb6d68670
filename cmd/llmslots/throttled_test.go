//go:build unix

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
)

// throttledCodex is a stand-in for codex that prints, on stderr, what the real
// one prints when throttled, and exits non-zero: $MSG, or nothing.
const throttledCodex = `#!/bin/sh
echo "working on: $*"
if [ -n "$MSG" ]; then
	printf '%s\n' "$MSG" >&2
	exit "${CODE:-1}"
fi
echo "done" >&2
exit "${CODE:-0}"
`

func writeThrottledCodex(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "codex")
	if err := os.WriteFile(path, []byte(throttledCodex), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func statusJSON(t *testing.T, e *testEnv) llmslots.Status {
	t.Helper()
	r := e.run("status", "--json", "--max", "4")
	if r.code != 0 {
		t.Fatalf("status: %d %s", r.code, r.stderr)
	}
	var st llmslots.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	return st
}

// TestRunThrottledOn: a line of the child's stderr that matches pauses
// the pool for the hint it gives and lowers the limit; the line still
// reaches stderr unchanged, and the exit status is the child's.
func TestRunThrottledOn(t *testing.T) {
	codex := writeThrottledCodex(t)
	re := `429|[Rr]ate.?limit|usage limit`
	for _, c := range []struct {
		msg  string
		hint time.Duration
	}{
		{"ERROR: unexpected status 429 Too Many Requests: Rate limit reached for requests. Please try again in 20s.", 20 * time.Second},
		{"stream error: rate limit exceeded; retry after 3 seconds", 3 * time.Second},
		{"You've hit your usage limit. Upgrade to Pro or try again in 1 hour 20 minutes.", 80 * time.Minute},
		{"Error: 429 {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\"}} (Retry-After: 7)", 7 * time.Second},
		{"rate limit hit; try again at 3:05 PM", 0},
	} {
		e := newEnv(t)
		// --detect none: the stand-in is called codex, and the regexp is
		// what is tested here.
		r := e.runEnv(e.with("MSG="+c.msg, "CODE=1"), "", "run", "--max", "4", "--detect", "none", "--throttled-on", re, "--", codex, "exec", "x")
		if r.code != 1 {
			t.Fatalf("exit %d, want the child's 1; stderr %q", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, c.msg+"\n") {
			t.Fatalf("the child's stderr did not come through untouched: %q", r.stderr)
		}
		st := statusJSON(t, e)
		if st.Throttle == nil || st.Throttle.LastReport == nil {
			t.Fatalf("%q: no report in status: %+v", c.msg, st.Throttle)
		}
		if got := st.Throttle.LastReport.Hint; got != c.hint {
			t.Errorf("%q: hint %v, want %v", c.msg, got, c.hint)
		}
		if st.Throttle.PausedUntil.IsZero() || st.Limit != 2 {
			t.Errorf("%q: after a report: limit %d, pause %v", c.msg, st.Limit, st.Throttle.PausedUntil)
		}
		// While paused, run --wait 0 fails at once (75) and says so.
		if c.hint > 0 {
			r := e.run("run", "--max", "4", "--wait", "300ms", "--", "true")
			if r.code != exitBusy || !strings.Contains(r.stderr, "paused until") {
				t.Errorf("run during the pause: exit %d, stderr %q", r.code, r.stderr)
			}
		}
	}

	// No match, exit 0: nothing reported, no state file.
	e := newEnv(t)
	r := e.run("run", "--max", "4", "--throttled-on", re, "--", codex)
	if r.code != 0 || !strings.Contains(r.stderr, "done\n") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Lstat(filepath.Join(e.dir, ".throttle")); err == nil {
		t.Fatal("a throttle state after a run that was not throttled")
	}
}

// TestRunThrottledExit: --throttled-exit reports on the child's status.
func TestRunThrottledExit(t *testing.T) {
	codex := writeThrottledCodex(t)
	e := newEnv(t)
	r := e.runEnv(e.with("CODE=3"), "", "run", "--max", "4", "--throttled-exit", "3", "--", codex)
	if r.code != 3 {
		t.Fatalf("exit %d", r.code)
	}
	st := statusJSON(t, e)
	if st.Throttle == nil || st.Throttle.LastReport == nil || st.Throttle.LastReport.Hint != 0 || st.Throttle.PausedUntil.IsZero() {
		t.Fatalf("after --throttled-exit: %+v", st.Throttle)
	}
	if r := e.run("resume"); r.code != 0 {
		t.Fatalf("resume: %d %s", r.code, r.stderr)
	}
	if st := statusJSON(t, e); st.Throttle != nil || st.Limit != 4 {
		t.Fatalf("after resume: limit %d, %+v", st.Limit, st.Throttle)
	}
	if r := e.run("run", "--exec", "--throttled-exit", "3", "--", "true"); r.code != exitUsage {
		t.Fatalf("--exec with --throttled-exit: exit %d", r.code)
	}
	if r := e.run("run", "--throttled-on", "(", "--", "true"); r.code != exitUsage {
		t.Fatalf("a bad regexp: exit %d", r.code)
	}
}

// TestPauseCommand: pause holds every grant back, with its reason in
// status; the waiting line says until when; resume lets the waiter in.
func TestPauseCommand(t *testing.T) {
	e := newEnv(t)
	if r := e.run("pause", "--for", "1h", "--reason", "provider incident"); r.code != 0 {
		t.Fatalf("pause: %d %s", r.code, r.stderr)
	}
	r := e.run("status", "--max", "4")
	if !strings.Contains(r.stdout, "paused by hand until") || !strings.Contains(r.stdout, "provider incident") {
		t.Fatalf("status while paused:\n%s", r.stdout)
	}
	p := e.start("run", "--max", "4", "--", "echo", "ran")
	time.Sleep(300 * time.Millisecond)
	if r := e.run("resume"); r.code != 0 {
		t.Fatalf("resume: %d %s", r.code, r.stderr)
	}
	if line := p.line(); line != "ran" {
		t.Fatalf("the waiter printed %q", line)
	}
	if errLine := p.errLine(); !strings.Contains(errLine, "paused until") {
		t.Fatalf("the waiting line: %q", errLine)
	}
	p.wait()
	for _, args := range [][]string{{"pause"}, {"pause", "--for", "0s"}, {"pause", "--for", "48h"}, {"pause", "--for", "1s", "x"}} {
		if r := e.run(args...); r.code != exitUsage {
			t.Errorf("%q: exit %d", args, r.code)
		}
	}
}

func TestParseRetryHint(t *testing.T) {
	for line, want := range map[string]time.Duration{
		"Please try again in 120ms.":            120 * time.Millisecond,
		"try again in 2.5s":                     2500 * time.Millisecond,
		"Try again in 5 minutes":                5 * time.Minute,
		"retry after 30 seconds":                30 * time.Second,
		"retry-after: 12":                       12 * time.Second,
		"retry-after-ms: 250":                   250 * time.Millisecond,
		"try again in 1 hour, 5 minutes":        65 * time.Minute,
		"usage limit reached, try again at 5pm": 0,
		"429 Too Many Requests":                 0,
		"try again in 9999 days":                24 * time.Hour,
	} {
		if got := parseRetryHint(line); got != want {
			t.Errorf("parseRetryHint(%q) = %v, want %v", line, got, want)
		}
	}
}
