//go:build unix

package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
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
		{"codex", "diff --git a/t.txt b/t.txt\n--- a/t.txt\n+++ b/t.txt\n@@ -1,3 +1,3 @@\n ERROR: You've hit your usage limit. Try again in 4 days.\n-old\n+new", nil},
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

// TestDetectFlagErrors: a detector no one knows is refused before
// anything runs; the names are read without regard to case.
func TestDetectFlagErrors(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{
		{"run", "--detect", "gemini", "--", "true"},
		{"run", "--detect", "codex,", "--", "true"},
	} {
		if r := e.run(args...); r.code != exitUsage || strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 {
			t.Errorf("%q: exit %d, stderr %q; want a usage error", args, r.code, r.stderr)
		}
	}
	for _, args := range [][]string{
		{"run", "--exec", "--", "true"},                       // the default, off with --exec
		{"run", "--detect", "claude", "--exec", "--", "true"}, // output to watch: run stays
		{"run", "--detect", "CODEX,Claude", "--", "true"},
	} {
		if r := e.run(args...); r.code != 0 {
			t.Errorf("%q: exit %d %s", args, r.code, r.stderr)
		}
	}
}

// TestShimPassesDetect: a shim for codex passes --detect auto with
// --exec, so that run stays the program's parent where there is output
// to watch, and reports the limits it prints; one for another name, or
// given --detect none, passes no --detect.
func TestShimPassesDetect(t *testing.T) {
	e := newEnv(t)
	realDir, binDir := t.TempDir(), t.TempDir()
	path := binDir + ":" + realDir + ":/usr/bin:/bin"
	for _, c := range []struct {
		name string
		args []string
		exec bool // --exec alone
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
		if !strings.Contains(script, "'--exec'") || strings.Contains(script, "'--detect'") == c.exec {
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

// TestDetectKeepsOutputForASlowReader: with --detect (the default for a
// command named codex), the command's stdout reaches a reader that takes
// its time in full. It did not: run gave up copying one second after the
// command exited, and a reader slower than that got only the 64 KiB the
// pipe held (`llmslots run -- codex exec ... | slow-consumer`).
func TestDetectKeepsOutputForASlowReader(t *testing.T) {
	dir := t.TempDir()
	codex := filepath.Join(dir, "codex")
	script := "#!/bin/sh\nhead -c 1000000 /dev/zero | tr '\\0' 'x'\n"
	if err := os.WriteFile(codex, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	out, err := e.sh(`"$LLMSLOTS" run --max 2 -- "$CODEX" | (sleep 2; wc -c)`, "CODEX="+codex)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := strings.TrimSpace(out); got != "1000000" {
		t.Fatalf("the reader got %s bytes of 1000000", got)
	}
}

// TestDetectAfterAnUnclosedFence: codex exec shows at most 20 lines of a
// command's output, so a README's ``` block is often cut before it closes;
// codex's own usage-limit error after it must still count, as it does for
// DetectLimit. run ignored every later line of the stream.
func TestDetectAfterAnUnclosedFence(t *testing.T) {
	codex := standIn(t, "codex")
	e := newEnv(t)
	errOut := "exec\nbash -lc 'sed -n 1,80p README.md' in /repo\n succeeded in 5ms:\n# tool\n```sh\ngo install example.com/tool@latest\n" +
		"codex\nI'll edit the install section.\n" +
		"ERROR: You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing) or try again in 2 hours 5 minutes."
	r := e.runEnv(e.with("ERR="+errOut, "CODE=1"), "", "run", "--max", "2", "--", codex, "exec", "x")
	if r.code != 1 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	st := statusJSON(t, e)
	if st.Throttle == nil || st.Throttle.LastReport == nil || st.Throttle.LastReport.Kind != "usage" {
		t.Fatalf("the usage limit after an unclosed fence was not reported: %+v", st.Throttle)
	}
}

// TestDetectPassesOnABrokenPipe: run -- codex | head -1: when the reader
// of the command's stdout is gone, the command gets SIGPIPE, as it would
// writing there itself, and run exits with its status (141), instead of
// run dying of SIGPIPE while the command wrote on, holding its slot, into
// a file nobody read.
func TestDetectPassesOnABrokenPipe(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash for PIPESTATUS")
	}
	codex := filepath.Join(t.TempDir(), "codex")
	if err := os.WriteFile(codex, []byte("#!/bin/sh\nwhile :; do echo line; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-c", `"$LLMSLOTS" run --max 2 -- "$CODEX" | head -1; echo "run ${PIPESTATUS[0]}"`)
	cmd.Env = e.with("CODEX=" + codex)
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "line\nrun 141\n" {
		t.Fatalf("%v: %q; want line, and run exiting 141 with its command", err, out)
	}
	if r := e.run("run", "--max", "1", "--wait", "0", "--", "true"); r.code != 0 {
		t.Fatalf("a slot is still held after head left: %d %s", r.code, r.stderr)
	}
}

// TestDetectKeepsTheOrderOfOneFile: > log 2>&1 gives stdout and stderr one
// copy, so their lines stay in the order the command wrote them.
func TestDetectKeepsTheOrderOfOneFile(t *testing.T) {
	codex := filepath.Join(t.TempDir(), "codex")
	script := "#!/bin/sh\nfor i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done\n"
	if err := os.WriteFile(codex, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	log := filepath.Join(t.TempDir(), "log")
	if out, err := e.sh(`"$LLMSLOTS" run --max 2 -- "$CODEX" > "$LOG" 2>&1`, "CODEX="+codex, "LOG="+log); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := "out1\nerr1\nout2\nerr2\nout3\nerr3\nout4\nerr4\nout5\nerr5\n"
	if got := readFile(t, log); got != want {
		t.Fatalf("log %q, want %q", got, want)
	}
}

// TestDetectWithATinyTempDir: where TMPDIR has no room for a copy (a 1 MiB
// tmpfs), --detect runs the command unwatched, saying why, so that the
// command's writes do not fail for want of space in a file of ours.
func TestDetectWithATinyTempDir(t *testing.T) {
	tiny := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", tiny).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", tiny).Run() })
	codex := filepath.Join(t.TempDir(), "codex")
	if err := os.WriteFile(codex, []byte("#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\0' x\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	r := e.runEnv(e.with("TMPDIR="+tiny), "", "run", "--max", "2", "--", codex)
	if r.code != 0 || len(r.stdout) != 3000000 || !strings.Contains(r.stderr, "runs unwatched") || !strings.Contains(r.stderr, "KiB free") {
		t.Fatalf("exit %d, %d bytes out, stderr %q", r.code, len(r.stdout), r.stderr)
	}
}
