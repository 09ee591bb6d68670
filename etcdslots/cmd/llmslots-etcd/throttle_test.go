//go:build unix

package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pause, status and resume, as a user runs them: a pause by hand shows in
// status with its reason and an end a minute away, holds back run (exit
// 75 with --wait), and resume lets run through at once.
func TestPauseStatusResume(t *testing.T) {
	addr := etcdAddr(t)
	pool := poolName(t)
	e := env(t)
	at := []string{"--etcd", addr, "--pool", pool}
	r := run(t, e, append([]string{"pause", "--for", "1m", "--reason", "quota spent"}, at...)...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "paused etcd://llmslots/"+pool+" for 1m0s") {
		t.Fatalf("pause: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	st := readStatus(t, e, append(at, "--max", "2")...)
	if th := st.Throttle; th == nil || th.LastReport == nil || th.LastReport.Reason != "quota spent" || time.Until(th.PausedUntil) < 55*time.Second {
		t.Fatalf("status --json after pause: %+v", st.Throttle)
	}
	text := run(t, e, append([]string{"status", "--max", "2"}, at...)...)
	t.Logf("status:\n%s", text.stdout)
	if !strings.Contains(text.stdout, "throttled: paused by hand by pid") || !strings.Contains(text.stdout, ": quota spent") {
		t.Errorf("status does not show the pause:\n%s", text.stdout)
	}
	if r := run(t, e, append(append([]string{"run", "--max", "2", "--wait", "500ms"}, at...), "--", "true")...); r.code != exitBusy || !strings.Contains(r.stderr, "paused by hand by pid") {
		t.Errorf("run while paused: exit %d (%s), want %d saying the pool is paused", r.code, r.stderr, exitBusy)
	}
	if r := run(t, e, append([]string{"resume"}, at...)...); r.code != 0 || r.stdout != "resumed etcd://llmslots/"+pool+"\n" {
		t.Fatalf("resume: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, e, append(append([]string{"run", "--max", "2", "--wait", "2s"}, at...), "--", "true")...); r.code != 0 || r.took > time.Second {
		t.Errorf("run after resume: exit %d after %v (%s)", r.code, r.took, r.stderr)
	}
	if st := readStatus(t, e, append(at, "--max", "2")...); st.Throttle != nil {
		t.Errorf("status after resume: %+v", st.Throttle)
	}
	for _, bad := range [][]string{{"pause"}, {"pause", "--for", "0s"}, {"pause", "--for", "25h"}, {"pause", "--for", "1s", "--reason", "a\x01b"}} {
		if r := run(t, e, append(bad, at...)...); r.code != exitUsage {
			t.Errorf("%q: exit %d, want %d (%s)", bad, r.code, exitUsage, r.stderr)
		}
	}
}

// run --throttled-on: a line of the command's stderr with a hint of 3 s
// reports the slot's work throttled; the line reaches stderr; status
// shows the report, and the next run waits out the pause. --throttled-exit
// reports on the exit status.
func TestRunThrottledOn(t *testing.T) {
	addr := etcdAddr(t)
	pool := poolName(t)
	e := env(t)
	at := []string{"--etcd", addr, "--pool", pool, "--max", "2"}
	start := time.Now()
	r := run(t, e, append(append([]string{"run", "--throttled-on", "(?i)rate.?limit"}, at...), "--", "sh", "-c", `echo "Rate limit reached, try again in 3s" >&2; exit 1`)...)
	if r.code != 1 || !strings.Contains(r.stderr, "Rate limit reached, try again in 3s\n") {
		t.Fatalf("run --throttled-on: exit %d, stderr %q", r.code, r.stderr)
	}
	st := readStatus(t, e, at...)
	if th := st.Throttle; th == nil || th.LastReport == nil || th.LastReport.Kind != "throttled" || th.LastReport.Hint != 3*time.Second || th.PausedUntil.IsZero() || st.Limit != 1 {
		t.Fatalf("status after the report: limit %d, %+v", st.Limit, st.Throttle)
	}
	next := run(t, e, append(append([]string{"run", "--wait", "10s"}, at...), "--", "true")...)
	t.Logf("report made %v after start; the next run ended %v after start", r.took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if next.code != 0 || time.Since(start) < 3*time.Second {
		t.Errorf("the run after the report: exit %d, ended %v after the first began; want after the 3s pause", next.code, time.Since(start))
	}

	pool2 := poolName(t) + "-exit"
	at2 := []string{"--etcd", addr, "--pool", pool2, "--max", "2"}
	if r := run(t, e, append(append([]string{"run", "--throttled-exit", "7"}, at2...), "--", "sh", "-c", "exit 7")...); r.code != 7 {
		t.Fatalf("run --throttled-exit 7: exit %d, %s", r.code, r.stderr)
	}
	if th := readStatus(t, e, at2...).Throttle; th == nil || th.LastReport == nil || th.LastReport.Hint != 0 || th.PausedUntil.IsZero() {
		t.Errorf("status after --throttled-exit: %+v", th)
	}
}

// "llmslots pause" and "resume" with LLMSLOTS_ETCD set (or --etcd) reach
// the cluster pool through llmslots-etcd, and leave the host's pools
// alone: they used to pause a host's directory and say so. "llmslots run
// --etcd --throttled-on", refused before, reports to the cluster pool.
func TestCorePauseReachesTheCluster(t *testing.T) {
	addr := etcdAddr(t)
	dir := t.TempDir()
	core := filepath.Join(dir, "llmslots")
	build := exec.Command("go", "build", "-o", core, "github.com/llmslots/llmslots/cmd/llmslots")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building llmslots: %v\n%s", err, out)
	}
	if err := os.Symlink(self(t), filepath.Join(dir, "llmslots-etcd")); err != nil {
		t.Fatal(err)
	}
	pool := poolName(t)
	e := env(t)
	slotDir := ""
	for _, kv := range e {
		if v, ok := strings.CutPrefix(kv, "LLMSLOTS_DIR="); ok {
			slotDir = v
		}
	}
	cmd := exec.Command(core, "pause", "--pool", pool, "--for", "40s", "--reason", "via core")
	cmd.Env = append(e, "LLMSLOTS_ETCD="+addr)
	out, err := cmd.CombinedOutput()
	t.Logf("LLMSLOTS_ETCD=... llmslots pause --pool %s --for 40s: %s", pool, out)
	if err != nil || !strings.HasPrefix(string(out), "paused etcd://llmslots/"+pool) {
		t.Fatalf("llmslots pause with LLMSLOTS_ETCD: %v, %s", err, out)
	}
	st := readStatus(t, e, "--etcd", addr, "--pool", pool, "--max", "1")
	if th := st.Throttle; th == nil || th.LastReport == nil || th.LastReport.Reason != "via core" || th.PausedUntil.IsZero() {
		t.Fatalf("the cluster pool after llmslots pause: %+v", st.Throttle)
	}
	filepath.WalkDir(slotDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".throttle") {
			t.Errorf("llmslots pause wrote %s in the host's pools", path)
		}
		return nil
	})
	cmd = exec.Command(core, "resume", "--etcd", addr, "--pool", pool)
	cmd.Env = e
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "resumed etcd://llmslots/"+pool+"\n" {
		t.Fatalf("llmslots resume --etcd: %v, %s", err, out)
	}
	if st := readStatus(t, e, "--etcd", addr, "--pool", pool, "--max", "1"); st.Throttle != nil {
		t.Errorf("the cluster pool after llmslots resume: %+v", st.Throttle)
	}
	cmd = exec.Command(core, "run", "--etcd", addr, "--pool", pool, "--max", "2", "--throttled-on", "429", "--", "sh", "-c", "echo 'HTTP 429: retry after 2 seconds' >&2; exit 9")
	cmd.Env = e
	if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 9 || string(out) != "HTTP 429: retry after 2 seconds\n" {
		t.Fatalf("llmslots run --etcd --throttled-on: %v, %q", err, out)
	}
	if th := readStatus(t, e, "--etcd", addr, "--pool", pool, "--max", "2").Throttle; th == nil || th.LastReport == nil || th.LastReport.Hint != 2*time.Second || th.PausedUntil.IsZero() {
		t.Errorf("the cluster pool after llmslots run --etcd --throttled-on: %+v", th)
	}
}

// run --detect auto, on a command named claude that prints Claude Code's
// usage-limit line with its reset 4 s ahead on stdout: the line reaches
// stdout, status says the pool waits for a usage limit to reset (the
// limit kept), and the next run, from another "host", waits for the reset.
func TestRunDetectsAUsageLimit(t *testing.T) {
	addr := etcdAddr(t)
	pool := poolName(t)
	e := env(t)
	at := []string{"--etcd", addr, "--pool", pool, "--max", "2"}
	claude := filepath.Join(t.TempDir(), "claude")
	if err := os.WriteFile(claude, []byte("#!/bin/sh\nprintf '%s\\n' \"$OUT\"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	reset := time.Now().Add(4 * time.Second).Truncate(time.Second)
	line := "Claude AI usage limit reached|" + strconv.FormatInt(reset.Unix(), 10)
	r := run(t, append(e, "OUT="+line), append(append([]string{"run"}, at...), "--", claude, "-p", "hi")...)
	if r.code != 1 || r.stdout != line+"\n" {
		t.Fatalf("run: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	st := readStatus(t, e, at...)
	if th := st.Throttle; th == nil || th.LastReport == nil || th.LastReport.Kind != "usage" || th.LastReport.Reason != line || st.Limit != 2 {
		t.Fatalf("status after the usage limit: limit %d, %+v", st.Limit, st.Throttle)
	}
	if text := run(t, e, append([]string{"status"}, at...)...); !strings.Contains(text.stdout, "waiting for a usage limit to reset") {
		t.Errorf("status does not say what the pool waits for:\n%s", text.stdout)
	}
	next := run(t, e, append(append([]string{"run", "--wait", "15s"}, at...), "--", "true")...)
	// The cluster rounds the pause up to whole seconds.
	if late := time.Since(reset); next.code != 0 || late < 0 || late > 3*time.Second {
		t.Errorf("the next run: exit %d, ended %v after the reset (%s)", next.code, late.Round(time.Millisecond), next.stderr)
	}
}
