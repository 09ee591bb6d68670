//go:build unix

package main

import (
	"debug/buildinfo"
	"strings"
	"testing"
)

// --version and version print the module's version from the build info,
// the commit it was built from when the build recorded one, and the Go
// version, as the core command does. The expectation is read from the
// binary itself, as `go version -m` reads it.
func TestVersion(t *testing.T) {
	bi, err := buildinfo.ReadFile(self(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{name + " " + bi.Main.Version, bi.GoVersion}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			want = append(want, s.Value)
		case s.Key == "vcs.modified" && s.Value == "true":
			want = append(want, "modified")
		}
	}
	e := env(t)
	for _, arg := range []string{"--version", "version", "-version"} {
		r := run(t, e, arg)
		if r.code != 0 || r.stderr != "" || strings.Count(r.stdout, "\n") != 1 {
			t.Errorf("llmslots-etcd %s: exit %d, stdout %q, stderr %q; want one line", arg, r.code, r.stdout, r.stderr)
			continue
		}
		for _, w := range want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("llmslots-etcd %s said %q; want %q in it", arg, r.stdout, w)
			}
		}
	}
	if r := run(t, e, "help"); !strings.Contains(r.stdout, "--version") {
		t.Errorf("llmslots-etcd help does not mention --version:\n%s", r.stdout)
	}
}
