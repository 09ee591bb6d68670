//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A slot is free only when the last process holding its lock is gone: a
// command that backgrounds a descendant and exits leaves the slot with
// that descendant, and nobody else gets it until the descendant ends.
func TestBackgroundedDescendantKeepsTheSlot(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	// The descendant's output goes elsewhere, so that run's pipes close
	// when sh exits.
	if r := e.run("run", "--max", "1", "--", "sh", "-c", "sleep 2 >/dev/null 2>&1 </dev/null & exit 0"); r.code != 0 {
		t.Fatalf("run: exit %d: %s", r.code, r.stderr)
	}
	r := e.run("run", "--max", "1", "--wait", "0", "--", "true")
	if time.Since(start) < 2*time.Second && r.code != exitBusy {
		t.Fatalf("a second run got the slot (exit %d) while the backgrounded sleep still holds it", r.code)
	}
	if r := e.run("run", "--max", "1", "--wait", "10s", "--", "true"); r.code != 0 {
		t.Fatalf("the slot was not freed when the descendant ended: exit %d: %s", r.code, r.stderr)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("the slot came back after %v, before the descendant's 2 s", took)
	}
}

// A layer that closes the inherited descriptor (Python's subprocess does,
// by default) but passes the environment on: the inner run's ancestor
// holds the slot, so the inner run nests in it at once instead of waiting
// on its own ancestor (max 1: forever; max 2: a second slot).
func TestInnerRunBehindPythonNestsInItsAncestorsSlot(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	e := newEnv(t)
	script := filepath.Join(t.TempDir(), "x.py")
	src := `import os, subprocess, sys
r = subprocess.run([os.environ["LLMSLOTS"], "run", "--max", sys.argv[1], "--wait", "0", "--", "sh", "-c", "echo inner ran"])
sys.exit(r.returncode)
`
	if err := writeFile(script, src); err != nil {
		t.Fatal(err)
	}
	for _, max := range []string{"1", "2"} {
		r := e.run("run", "--max", max, "--", py, script, max)
		if r.code != 0 || !strings.Contains(r.stdout, "inner ran") {
			t.Errorf("max %s: exit %d, stdout %q, stderr %q", max, r.code, r.stdout, r.stderr)
		}
		if r.took > 5*time.Second {
			t.Errorf("max %s: took %v; want at once", max, r.took)
		}
	}
	// With max 2, the inner run nested rather than taking a second slot:
	// one process tree, one slot. Its status, read from inside, says so.
	r := e.run("run", "--max", "2", "--", py, "-c",
		`import os, subprocess; subprocess.run([os.environ["LLMSLOTS"], "status", "--max", "2"])`)
	if r.code != 0 || !strings.Contains(r.stdout, "1 held") {
		t.Errorf("status inside a run, behind python: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}
