//go:build unix

package main

import (
	"strings"
	"testing"
)

// An LLMSLOTS_MAX the default cannot use is ignored, and said so on
// stderr, by every subcommand that falls back on the default; the command
// still runs. A --max on the command line makes the variable moot: no word.
func TestIgnoredMaxIsSaid(t *testing.T) {
	e := newEnv(t)
	for _, bad := range []string{"abc", "0", "1025", "-3", "2.5"} {
		env := e.with("LLMSLOTS_MAX=" + bad)
		want := `LLMSLOTS_MAX must be an integer 1..1024; ignoring "` + bad + `"`
		r := e.runEnv(env, "", "run", "--", "echo", "ran")
		if r.code != 0 || r.stdout != "ran\n" {
			t.Fatalf("LLMSLOTS_MAX=%s run: exit %d, stdout %q, stderr %q", bad, r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "using max ") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("LLMSLOTS_MAX=%s run: stderr %q, want one line saying %q and the max used", bad, r.stderr, want)
		}
		for _, sub := range []string{"status", "cleanup"} {
			r := e.runEnv(env, "", sub)
			if r.code != 0 || !strings.Contains(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("LLMSLOTS_MAX=%s %s: exit %d, stderr %q, want one line saying %q", bad, sub, r.code, r.stderr, want)
			}
		}
		r = e.runEnv(env, "", "run", "--max", "2", "--", "echo", "ran")
		if r.code != 0 || r.stdout != "ran\n" || r.stderr != "" {
			t.Errorf("LLMSLOTS_MAX=%s run --max 2: exit %d, stdout %q, stderr %q; want no word of the variable", bad, r.code, r.stdout, r.stderr)
		}
	}
	// A good value: silence.
	if r := e.runEnv(e.with("LLMSLOTS_MAX=2"), "", "run", "--", "echo", "ran"); r.code != 0 || r.stderr != "" {
		t.Errorf("LLMSLOTS_MAX=2 run: exit %d, stderr %q", r.code, r.stderr)
	}
}
