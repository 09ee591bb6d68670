//go:build unix

package main

import (
	"regexp"
	"strings"
	"testing"
)

// Help speaks of flags one way, --flag, as the synopses do: in the flag
// lists, in the descriptions and in flag errors.
func TestHelpSaysDoubleDash(t *testing.T) {
	e := newEnv(t)
	single := regexp.MustCompile(`(^|[\s\[(,])-[a-z]`)
	for _, c := range commands {
		r := e.run(c.name, "--help")
		if r.code != 0 {
			t.Fatalf("%s --help: exit %d, %q", c.name, r.code, r.stderr)
		}
		_, flags, ok := strings.Cut(r.stdout, "\nFlags:\n")
		if !ok {
			t.Fatalf("%s --help lists no flags: %q", c.name, r.stdout)
		}
		for _, l := range strings.Split(r.stdout, "\n") {
			if single.MatchString(l) {
				t.Errorf("%s --help: a flag with one dash in %q", c.name, l)
			}
		}
		if !strings.HasPrefix(flags, "  --") {
			t.Errorf("%s --help: flag list %q does not start with --flag", c.name, flags)
		}
	}
	for _, tt := range []struct{ args []string }{
		{[]string{"run", "--frobnicate", "--", "true"}},
		{[]string{"run", "--wait", "soon", "--", "true"}},
		{[]string{"status", "--json=maybe"}},
		{[]string{"status", "--max"}},
	} {
		r := e.run(tt.args...)
		msg, _, _ := strings.Cut(r.stderr, "\n")
		if r.code != 64 || !strings.Contains(msg, " --") || single.MatchString(msg) {
			t.Errorf("llmslots %q: exit %d, first line %q; want a usage error naming the flag as --flag", tt.args, r.code, msg)
		}
	}
}

// The main usage names every variable the command reads, and status and
// cleanup say what --max is to them: the pool's size, not a limit they
// enforce (neither holds a slot).
func TestHelpTexts(t *testing.T) {
	e := newEnv(t)
	r := e.run("help")
	for _, v := range []string{"LLMSLOTS_DIR", "LLMSLOTS_MAX", "LLMSLOTS_GROUP"} {
		if !strings.Contains(r.stdout, v) {
			t.Errorf("llmslots help does not mention %s:\n%s", v, r.stdout)
		}
	}
	for _, sub := range []string{"status", "cleanup"} {
		r := e.run(sub, "--help")
		_, flags, _ := strings.Cut(r.stdout, "\nFlags:\n")
		_, max, _ := strings.Cut(flags, "  --max N\n")
		max, _, _ = strings.Cut(max, "\n  --")
		if strings.Contains(max, "holders") || !strings.Contains(max, "pool size") {
			t.Errorf("%s --help describes --max as %q; want it called the pool size", sub, max)
		}
	}
}

// Help shows a default only where the flag has one: a sentinel that
// stands for "not given" (--throttled-exit's -1) is no default (issue 22,
// item 11). The defaults --help may show are the real ones below, each.
func TestHelpShowsOnlyRealDefaults(t *testing.T) {
	e := newEnv(t)
	shown := regexp.MustCompile(`(?m)^  (--\S+).*\n\s+\t.*\(default ([^)]*)\)$`)
	real := map[string]string{"release --grace": "10s", "run --detect": "auto", "shim --detect": "auto"}
	for _, c := range commands {
		r := e.run(c.name, "--help")
		for _, m := range shown.FindAllStringSubmatch(r.stdout, -1) {
			if def, ok := real[c.name+" "+m[1]]; !ok || def != m[2] {
				t.Errorf("%s --help: %s shows (default %s), which it does not have", c.name, m[1], m[2])
			}
			delete(real, c.name+" "+m[1])
		}
	}
	for flag, def := range real {
		t.Errorf("%s --help does not show its default, %s", flag, def)
	}
}
