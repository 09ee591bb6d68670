//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A shim's NAME is written into its script: a newline in it would start a
// command run on every call of the shim. Every control character (C0,
// DEL, C1, bidirectional) is refused in NAME and in --bin-dir, before
// anything is written; shell syntax without one stays inert text.
func TestShimRefusesControlCharactersInNames(t *testing.T) {
	e := newEnv(t)
	binDir := t.TempDir()
	work := t.TempDir()
	pwned := filepath.Join(work, "pwned")
	for _, name := range []string{
		"tool\ntouch pwned",
		"tool\rtouch pwned",
		"tool\x1b[2J",
		"tool\u0085",
		"tool\u009b2J",
		"tool\x7f",
		"tool\u202eexe",
		"tool\u2066",
		"tool\xff",
	} {
		r := e.run("shim", name, "--max", "1", "--bin-dir", binDir)
		if path := filepath.Join(binDir, name); r.code == 0 {
			// What the shim would do on every call.
			cmd := exec.Command("/bin/sh", path)
			cmd.Dir, cmd.Env = work, e.env
			cmd.Run()
		}
		if r.code != 64 || !strings.Contains(r.stderr, "NAME must be UTF-8 text without control characters") {
			t.Errorf("shim %q: exit %d, stderr %q; want a usage error", name, r.code, r.stderr)
		}
		if _, err := os.Stat(pwned); err == nil {
			t.Fatalf("shim %q: its script ran the code after the newline", name)
		}
	}
	for _, dir := range []string{filepath.Join(binDir, "a\nb"), filepath.Join(binDir, "a\u202eb")} {
		if r := e.run("shim", "codex", "--bin-dir", dir); r.code != 64 || !strings.Contains(r.stderr, "--bin-dir must be") {
			t.Errorf("shim --bin-dir %q: exit %d, stderr %q; want a usage error", dir, r.code, r.stderr)
		}
	}
	if entries, _ := os.ReadDir(binDir); len(entries) != 0 {
		t.Errorf("refused shims left files: %v", entries)
	}

	// Quotes, $( ) and spaces are no control characters: the shim is
	// written, and running it runs none of them.
	odd := `x'$(touch pwned) "y"`
	r := e.run("shim", odd, "--pool", "odd", "--max", "1", "--bin-dir", binDir) // no pool name: --pool
	if r.code != 0 {
		t.Fatalf("shim %q: exit %d, %q", odd, r.code, r.stderr)
	}
	script := readFile(t, filepath.Join(binDir, odd))
	if !strings.Contains(script, "llmslots shim --remove "+shellQuote(odd)+"\n") {
		t.Errorf("the script's removal hint does not quote the name:\n%s", script)
	}
	cmd := exec.Command("/bin/sh", filepath.Join(binDir, odd))
	cmd.Dir, cmd.Env = work, e.with("PATH="+binDir+":/usr/bin:/bin")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 127 {
		t.Errorf("the shim of %q with no real program: %v, %q; want exit 127", odd, err, out)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatalf("shim %q: running it ran the text of its name", odd)
	}
	if r := e.run("shim", "--remove", odd, "--bin-dir", binDir); r.code != 0 {
		t.Errorf("shim --remove %q: exit %d, %q", odd, r.code, r.stderr)
	}
}

// Labels, --dir and run --shim refuse control characters too, bidi ones
// included; a record planted with them shows in status without them.
func TestControlCharactersRefusedAndCleaned(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--label", "job \u202e24", "--", "true"}, "label must be"},
		{[]string{"run", "--label", "job \u2066x\u2069", "--", "true"}, "label must be"},
		{[]string{"run", "--label", "job\u061c", "--", "true"}, "label must be"},
		{[]string{"run", "--dir", "/tmp/a\nb", "--", "true"}, "--dir must be UTF-8 text without control characters"},
		{[]string{"status", "--dir", "/tmp/a\u202eb"}, "--dir must be UTF-8 text without control characters"},
		{[]string{"run", "--shim", "a\nb"}, "--shim must be UTF-8 text without control characters"},
	} {
		r := e.run(tt.args...)
		if r.code != 64 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("llmslots %q: exit %d, stderr %q; want a usage error saying %q", tt.args, r.code, r.stderr, tt.want)
		}
	}

	// A record no llmslots wrote: a dead pid, a label and a command full
	// of bidi controls.
	planted := "pid=999999999\nlabel=ok \u202eevil\u202c\ncommand=cmd \u2066x\u2069 \u200fy \u061cz\n"
	if err := os.WriteFile(filepath.Join(e.dir, "slot-0.lock"), []byte(planted), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, {"status", "--json"}, {"cleanup", "--dry-run"}} {
		r := e.run(args...)
		if r.code != 0 {
			t.Fatalf("llmslots %q: exit %d, %q", args, r.code, r.stderr)
		}
		if i := strings.IndexFunc(r.stdout, func(c rune) bool {
			return c == 0x061c || c == 0x200e || c == 0x200f || c >= 0x202a && c <= 0x202e || c >= 0x2066 && c <= 0x2069
		}); i >= 0 {
			t.Errorf("llmslots %q shows a bidi control: %q", args, r.stdout)
		}
		if !strings.Contains(r.stdout, "cmd  x  ") || args[0] == "status" && !strings.Contains(r.stdout, "ok  evil") {
			t.Errorf("llmslots %q does not show the record, cleaned: %q", args, r.stdout)
		}
	}
}
