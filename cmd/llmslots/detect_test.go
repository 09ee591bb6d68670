//go:build unix

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
)

// standIn writes an executable script called name, in a directory of its
// own, that prints $OUT on stdout and $ERR on stderr, then exits $CODE.
func standIn(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	script := "#!/bin/sh\n[ -n \"$OUT\" ] && printf '%s\\n' \"$OUT\"\n[ -n \"$ERR\" ] && printf '%s\\n' \"$ERR\" >&2\nexit \"${CODE:-0}\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDetectUsageLimitHoldsTheNextRun is issue 21's "done when": a
// stand-in for claude prints a usage-limit line naming its reset on
// stdout; run --detect auto (the default) recognises it by the command's
// name, and the next run on the pool waits until that reset. The line
// reaches stdout unchanged, status says what the pool waits for, and the
// limit is not lowered.
func TestDetectUsageLimitHoldsTheNextRun(t *testing.T) {
	claude := standIn(t, "claude")
	e := newEnv(t)
	reset := time.Now().Add(4 * time.Second).Truncate(time.Second)
	line := "Claude AI usage limit reached|" + strconv.FormatInt(reset.Unix(), 10)
	r := e.runEnv(e.with("OUT="+line, "CODE=1"), "", "run", "--max", "4", "--", claude, "-p", "hello")
	if r.code != 1 || r.stdout != line+"\n" {
		t.Fatalf("exit %d, stdout %q; want 1 and the line unchanged", r.code, r.stdout)
	}
	st := statusJSON(t, e)
	if st.Throttle == nil || st.Throttle.LastReport == nil || st.Throttle.LastReport.Kind != "usage" {
		t.Fatalf("no usage-limit report in status: %+v", st.Throttle)
	}
	if st.Limit != 4 || st.Throttle.Limit != 4 {
		t.Errorf("a usage limit lowered the limit: %d, %d", st.Limit, st.Throttle.Limit)
	}
	if d := st.Throttle.PausedUntil.Sub(reset); d < -time.Second || d > time.Second {
		t.Errorf("paused until %v, want the reset %v", st.Throttle.PausedUntil, reset)
	}
	if s := e.run("status", "--max", "4"); !strings.Contains(s.stdout, "waiting for a usage limit to reset") || !strings.Contains(s.stdout, line) {
		t.Errorf("status does not say what the pool waits for:\n%s", s.stdout)
	}
	next := e.run("run", "--max", "4", "--wait", "20s", "--", "true")
	if next.code != 0 {
		t.Fatalf("the next run: exit %d: %s", next.code, next.stderr)
	}
	if done := time.Now(); done.Before(reset) || done.After(reset.Add(3*time.Second)) {
		t.Fatalf("the next run ended at %v, %v after the reset; want just after it", done.Format(time.StampMilli), done.Sub(reset))
	}
	// Grants after the pause are spaced (a tenth of it), not refused.
	if busy := e.run("run", "--max", "4", "--wait", "2s", "--", "true"); busy.code != 0 {
		t.Fatalf("after the reset: exit %d: %s", busy.code, busy.stderr)
	}
}

// TestDetectRateLimitLowersTheLimit: codex's "exceeded retry limit" on
// stderr is a rate limit: the limit is lowered, the pool paused.
func TestDetectRateLimitLowersTheLimit(t *testing.T) {
	codex := standIn(t, "codex")
	e := newEnv(t)
	msg := "ERROR: exceeded retry limit, last status: 429 Too Many Requests"
	r := e.runEnv(e.with("ERR="+msg, "CODE=1"), "", "run", "--max", "4", "--", codex, "exec", "x")
	if r.code != 1 || !strings.Contains(r.stderr, msg+"\n") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	st := statusJSON(t, e)
	if st.Throttle == nil || st.Throttle.LastReport == nil || st.Throttle.LastReport.Kind != "throttled" || st.Throttle.Limit >= 4 {
		t.Fatalf("want a rate-limit report and a lower limit: %+v", st.Throttle)
	}
}

// TestDetectLeavesOrdinaryOutputAlone: what is no provider's message is
// not reported, even when it speaks of 429s; --detect none, and a command
// auto does not know, report nothing either.
func TestDetectLeavesOrdinaryOutputAlone(t *testing.T) {
	review := "The limiter returns 429 Too Many Requests when the rate limit is exceeded; see `if resp.StatusCode == 429 {` in client.go."
	usage := "Claude AI usage limit reached|" + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	for _, c := range []struct {
		name, out string
		args      []string
	}{
		{"claude", review, nil},
		{"claude", usage, []string{"--detect", "none"}},
		{"mytool", usage, nil},
	} {
		e := newEnv(t)
		args := append(append([]string{"run", "--max", "4"}, c.args...), "--", standIn(t, c.name))
		if r := e.runEnv(e.with("OUT="+c.out), "", args...); r.code != 0 || r.stdout != c.out+"\n" {
			t.Fatalf("%s %q: exit %d, stdout %q", c.name, c.args, r.code, r.stdout)
		}
		if _, err := os.Lstat(filepath.Join(e.dir, ".throttle")); err == nil {
			t.Errorf("%s %q printing %q: reported", c.name, c.args, c.out)
		}
	}
	// An explicit list watches whatever the command is called.
	e := newEnv(t)
	e.runEnv(e.with("OUT="+usage), "", "run", "--max", "4", "--detect", "codex,claude", "--", standIn(t, "mytool"))
	if st := statusJSON(t, e); st.Throttle == nil || st.Throttle.LastReport == nil || st.Throttle.LastReport.Kind != "usage" {
		t.Errorf("--detect codex,claude on mytool: %+v", st.Throttle)
	}
}

// TestDetectFlagErrors: a detector no one knows, and an explicit --detect
// with --exec, are refused before anything runs.
func TestDetectFlagErrors(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{
		{"run", "--detect", "gemini", "--", "true"},
		{"run", "--detect", "codex,", "--", "true"},
		{"run", "--detect", "claude", "--exec", "--", "true"},
	} {
		if r := e.run(args...); r.code != exitUsage || strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 {
			t.Errorf("%q: exit %d, stderr %q; want a usage error", args, r.code, r.stderr)
		}
	}
	// --exec with the default auto runs, unwatched.
	if r := e.run("run", "--exec", "--", "true"); r.code != 0 {
		t.Errorf("--exec with --detect auto: exit %d %s", r.code, r.stderr)
	}
}

// TestShimPassesDetect: a shim for codex stays the program's parent and
// reports the limits it prints (--detect auto); one for another name, or
// given --detect none, execs.
func TestShimPassesDetect(t *testing.T) {
	e := newEnv(t)
	realDir, binDir := t.TempDir(), t.TempDir()
	path := binDir + ":" + realDir + ":/usr/bin:/bin"
	for _, c := range []struct {
		name string
		args []string
		exec bool
	}{
		{"codex", nil, false},
		{"claude", []string{"--detect", "none"}, true},
		{"mytool", nil, true},
	} {
		args := append([]string{"shim", c.name, "--max", "2", "--bin-dir", binDir}, c.args...)
		if r := e.runEnv(e.with("PATH="+path), "", args...); r.code != 0 {
			t.Fatalf("%q: exit %d %s", args, r.code, r.stderr)
		}
		script := readFile(t, filepath.Join(binDir, c.name))
		if strings.Contains(script, "'--exec'") != c.exec || strings.Contains(script, "'--detect'") == c.exec {
			t.Errorf("%q wrote:\n%s", args, script)
		}
	}
	if err := os.Rename(standIn(t, "codex"), filepath.Join(realDir, "codex")); err != nil {
		t.Fatal(err)
	}
	msg := "ERROR: You've hit your usage limit. Upgrade to Pro or try again in 3 hours 5 minutes."
	if out, err := e.sh(`codex exec hi`, "PATH="+path, "ERR="+msg, "CODE=1"); err == nil || !strings.Contains(out, msg) {
		t.Fatalf("codex through the shim: %v\n%s", err, out)
	}
	r := e.run("status", "--json", "--max", "2", "--pool", "codex") // the shim's pool
	var st llmslots.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if st.Throttle == nil || st.Throttle.LastReport == nil || st.Throttle.LastReport.Kind != "usage" {
		t.Fatalf("no usage report after the shim's codex printed %q: %+v", msg, st.Throttle)
	}
	if left := time.Until(st.Throttle.PausedUntil); left < 3*time.Hour || left > 3*time.Hour+5*time.Minute {
		t.Errorf("paused for %v, want 3h05m", left)
	}
}

// TestDetectWithoutATempDir: where no file can be made to watch the
// command's output (TMPDIR gone, a full disk), --detect alone does not
// keep it from running: a warning, and the command's output unwatched.
// --throttled-on, asked for, fails as before.
func TestDetectWithoutATempDir(t *testing.T) {
	claude := standIn(t, "claude")
	e := newEnv(t)
	gone := e.with("TMPDIR="+filepath.Join(t.TempDir(), "gone"), "OUT=hello", "CODE=3")
	r := e.runEnv(gone, "", "run", "--max", "2", "--", claude)
	if r.code != 3 || r.stdout != "hello\n" || !strings.Contains(r.stderr, "runs unwatched") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 3, hello and a warning", r.code, r.stdout, r.stderr)
	}
	if r := e.runEnv(gone, "", "run", "--max", "2", "--throttled-on", "429", "--", claude); r.code != exitError {
		t.Fatalf("--throttled-on without a temp dir: exit %d, %q", r.code, r.stderr)
	}
}
