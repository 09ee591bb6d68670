//go:build unix

package main

import (
	"debug/buildinfo"
	"strings"
	"testing"
)

// --version and version print the module's version from the build info,
// and the commit it was built from when the build recorded one (issue 22,
// item 8). The expectation is read from the binary itself, as `go version
// -m` reads it.
func TestVersion(t *testing.T) {
	e := newEnv(t)
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"llmslots " + bi.Main.Version}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			want = append(want, s.Value)
		case s.Key == "vcs.modified" && s.Value == "true":
			want = append(want, "modified")
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}, {"-version"}} {
		r := e.run(args...)
		if r.code != 0 || r.stderr != "" || strings.Count(r.stdout, "\n") != 1 {
			t.Errorf("llmslots %s: exit %d, stdout %q, stderr %q; want one line", args[0], r.code, r.stdout, r.stderr)
			continue
		}
		for _, w := range want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("llmslots %s said %q; want %q in it", args[0], r.stdout, w)
			}
		}
	}
	if r := e.run("help"); !strings.Contains(r.stdout, "--version") {
		t.Errorf("llmslots help does not mention --version:\n%s", r.stdout)
	}
}
