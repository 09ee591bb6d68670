//go:build unix

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDetectDoesNotWaitForABackgroundWriter: a command that leaves a
// descendant writing to its stdout (a daemon, an MCP server, `yes &`) and
// exits: run exits once what the command wrote is copied, as the shell
// would without it. run copied on for as long as the descendant wrote
// faster than the copy matched lines (20 MB/s of short ones), forever.
func TestDetectDoesNotWaitForABackgroundWriter(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd/1"); err != nil {
		t.Skip("no /proc to see the command's stdout grow")
	}
	codex := filepath.Join(t.TempDir(), "codex")
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The command exits once yes has written 1 MB to its stdout.
	script := "#!/bin/sh\nyes & echo $! > \"$PIDFILE\"\n" +
		"while [ \"$(stat -L -c %s /proc/$$/fd/1)\" -lt 1000000 ]; do sleep 0.01; done\nexit 3\n"
	if err := os.WriteFile(codex, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--max", "2", "--", codex)
	cmd.Env = e.with("PIDFILE=" + pidFile)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	cmd.Stdout = devnull
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("run did not exit within 15 s of its command: %v", err)
	}
	if cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("run: %v; want exit 3", err)
	}
}

// TestDetectBrokenPipeWhenSIGPIPEIsIgnored: node ignores SIGPIPE, and
// claude is a node program, as is the npm wrapper that starts codex. Run
// directly, `claude -p ... | head -1` ends at its next write after head
// left (EPIPE); under run the SIGPIPE run sends is ignored and the command
// worked on to its end, its output thrown away.
func TestDetectBrokenPipeWhenSIGPIPEIsIgnored(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash for PIPESTATUS")
	}
	codex := filepath.Join(t.TempDir(), "codex")
	script := "#!/bin/sh\ntrap '' PIPE\ni=0\nwhile [ $i -lt 400 ]; do echo line $i || exit 9; i=$((i+1)); sleep 0.01; done\necho finished >&2\n"
	if err := os.WriteFile(codex, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-c", `"$LLMSLOTS" run --max 2 -- "$CODEX" | head -1; echo "run ${PIPESTATUS[0]}"`)
	cmd.Env = e.with("CODEX=" + codex)
	start := time.Now()
	out, _ := cmd.CombinedOutput()
	if strings.Contains(string(out), "finished") || time.Since(start) > 2*time.Second {
		t.Fatalf("the command ran on to its end after its reader left (%v): %q", time.Since(start).Round(time.Millisecond), out)
	}
}
