//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
