//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A slot directory that is a filesystem root, or the home directory, is
// refused with an error naming it: LLMSLOTS_DIR=/ made /.queue, and every
// named pool a directory of /; LLMSLOTS_DIR=$HOME made ~/bin the pool
// "bin" (issue 22, item 23). status, which creates nothing, is asked
// first, so that before the fix the test stopped before run made anything.
func TestUnsuitableSlotDirectoriesAreRefused(t *testing.T) {
	e := newEnv(t)
	home := t.TempDir()
	_, queueBefore := os.Lstat("/.queue")
	for _, c := range []struct{ name, dir, says string }{
		{"root", "/", "filesystem root"},
		{"root, unclean", "//.", "filesystem root"},
		{"home", home, "home directory"},
	} {
		env := e.with("LLMSLOTS_DIR="+c.dir, "HOME="+home)
		r := e.runEnv(env, "", "status", "--max", "1")
		if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "LLMSLOTS_DIR="+c.dir+" is the "+c.says) {
			t.Fatalf("%s: LLMSLOTS_DIR=%s status: exit %d, %q; want a refusal saying it is the %s", c.name, c.dir, r.code, r.stdout+r.stderr, c.says)
		}
		for _, args := range [][]string{
			{"run", "--max", "1", "--", "true"},
			{"run", "--pool", "bin", "--max", "1", "--", "true"},
			{"pause", "--for", "1m"},
			{"cleanup"},
		} {
			if r := e.runEnv(env, "", args...); r.code != 1 || !strings.Contains(r.stderr, c.says) {
				t.Errorf("%s: LLMSLOTS_DIR=%s %q: exit %d, %q; want a refusal", c.name, c.dir, args, r.code, r.stderr)
			}
		}
		r = e.runEnv(e.with("HOME="+home), "", "status", "--dir", c.dir)
		if r.code != 64 || !strings.Contains(r.stderr, "--dir "+c.dir+" is the "+c.says) {
			t.Errorf("%s: status --dir %s: exit %d, %q; want a usage error", c.name, c.dir, r.code, r.stderr)
		}
	}
	if entries, _ := os.ReadDir(home); len(entries) > 0 {
		t.Errorf("the home directory got %v", entries)
	}
	if _, err := os.Lstat("/.queue"); err == nil && queueBefore != nil {
		os.Remove("/.queue")
		t.Error("/.queue was made")
	}
}

// A shim whose NAME is no pool name (pool names are [a-z0-9._-]) and no
// --pool used to go to the default pool without a word: it is refused,
// saying the rule and that --pool gives the pool (issue 22, item 23).
func TestShimNameThatIsNoPoolName(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	r := e.run("shim", "Codex", "--bin-dir", dir)
	if r.code != 64 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "[a-z0-9._-]") ||
		!strings.Contains(r.stderr, `"Codex"`) || !strings.Contains(r.stderr, "--pool") {
		t.Errorf("shim Codex: exit %d, %q; want a usage error naming the rule and --pool", r.code, r.stdout+r.stderr)
	}
	if _, err := os.Lstat(filepath.Join(dir, "Codex")); err == nil {
		t.Error("the shim was written")
	}
	r = e.run("shim", "Codex", "--pool", "codex", "--bin-dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "pool codex") {
		t.Fatalf("shim Codex --pool codex: exit %d, %q", r.code, r.stdout+r.stderr)
	}
	if s := readFile(t, filepath.Join(dir, "Codex")); !strings.Contains(s, "'--pool' 'codex'") {
		t.Errorf("the shim does not name pool codex:\n%s", s)
	}
}
