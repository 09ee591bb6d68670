//go:build unix

package main

import (
	"strings"
	"testing"
)

// A bad flag value is reported with its cause, the flag and the value as
// given, on one line that points to --help: not the flag package's "parse
// error" followed by the whole usage (issue 22, item 6). Every flag that
// takes a number or a duration, of every subcommand, is tried.
func TestFlagErrorsSayTheCause(t *testing.T) {
	e := newEnv(t)
	bin := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--wait", "5", "--", "true"}, "--wait 5: missing unit (e.g. 5s)"},
		{[]string{"run", "--wait=soon", "--", "true"}, "--wait soon: not a duration"},
		{[]string{"run", "--wait", "5y", "--", "true"}, `--wait 5y: unknown unit "y"`},
		{[]string{"run", "--max", "abc", "--", "true"}, "--max abc: not a whole number"},
		{[]string{"run", "--max", "99999999999999999999", "--", "true"}, "--max 99999999999999999999: out of range"},
		{[]string{"run", "--throttled-exit", "x", "--", "true"}, "--throttled-exit x: not a whole number"},
		{[]string{"run", "--exec=maybe", "--", "true"}, "--exec=maybe: want true or false"},
		{[]string{"run", "--frobnicate", "--", "true"}, "unknown flag --frobnicate"},
		{[]string{"run", "--max"}, "--max needs a value"},
		{[]string{"status", "--max", "abc"}, "--max abc: not a whole number"},
		{[]string{"status", "--json=maybe"}, "--json=maybe: want true or false"},
		{[]string{"cleanup", "--max", "x"}, "--max x: not a whole number"},
		{[]string{"cleanup", "--dry-run=2"}, "--dry-run=2: want true or false"},
		{[]string{"release", "--slot", "x"}, "--slot x: not a whole number"},
		{[]string{"release", "--slot", "0", "--grace", "5"}, "--grace 5: missing unit (e.g. 5s)"},
		{[]string{"release", "--slot", "0", "--kill=yes"}, "--kill=yes: want true or false"},
		{[]string{"pause", "--for", "5"}, "--for 5: missing unit (e.g. 5s)"},
		{[]string{"pause"}, "--for is required"},
		{[]string{"resume", "--pool"}, "--pool needs a value"},
		{[]string{"shim", "codex", "--bin-dir", bin, "--max", "abc"}, "--max abc: not a whole number"},
		{[]string{"shim", "codex", "--bin-dir", bin, "--wait", "5"}, "--wait 5: missing unit (e.g. 5s)"},
		{[]string{"shim", "codex", "--bin-dir", bin, "--throttled-exit", "1.5"}, "--throttled-exit 1.5: not a whole number"},
		{[]string{"max", "--json=no-thanks"}, "--json=no-thanks: want true or false"},
	} {
		r := e.run(tt.args...)
		if r.code != 64 {
			t.Errorf("llmslots %q: exit %d, want 64; stderr %q", tt.args, r.code, r.stderr)
			continue
		}
		sub := "llmslots " + tt.args[0]
		if !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "\n") != 1 ||
			!strings.HasPrefix(r.stderr, sub+": ") || !strings.Contains(r.stderr, sub+" --help") ||
			strings.Contains(r.stderr, "parse error") || strings.Contains(r.stderr, "got 0s") {
			t.Errorf("llmslots %q said %q; want one line saying %q and pointing to %s --help", tt.args, r.stderr, tt.want, sub)
		}
	}
}

// run's flags written after the command go to the command, as they
// always did, but no longer silently: one line on stderr says so, unless
// -- marks where the command begins (issue 22, item 7).
func TestRunWarnsOfItsFlagsAfterTheCommand(t *testing.T) {
	e := newEnv(t)
	r := e.run("run", "--max", "1", "echo", "--max", "3", "--pool=codex")
	if r.code != 0 || r.stdout != "--max 3 --pool=codex\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "warning") ||
		!strings.Contains(r.stderr, "--max") || !strings.Contains(r.stderr, "--pool") || !strings.Contains(r.stderr, " -- ") {
		t.Errorf("stderr %q; want one warning line naming --max and --pool and advising --", r.stderr)
	}
	for _, args := range [][]string{
		{"run", "--max", "1", "--", "echo", "--max", "3"},     // -- given: meant for echo
		{"run", "--max", "1", "echo", "--maximum", "-n", "x"}, // not run's flags
	} {
		if r := e.run(args...); r.code != 0 || r.stderr != "" {
			t.Errorf("llmslots %q: exit %d, stderr %q; want no warning", args, r.code, r.stderr)
		}
	}
}
