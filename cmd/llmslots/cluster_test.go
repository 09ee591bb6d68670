//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// run and status with --etcd (or LLMSLOTS_ETCD) replace themselves with
// llmslots-etcd, here a stub script that records how it was run: this
// tests the hand-over, not etcd (etcdslots/cmd/llmslots-etcd has those
// tests, with a real member).

// stubCluster writes an llmslots-etcd stub into a directory of its own
// and returns the directory and the file where the stub writes its pid
// and its arguments, one a line. It exits 42.
func stubCluster(t *testing.T) (dir, out string) {
	dir = t.TempDir()
	out = filepath.Join(t.TempDir(), "stub.out")
	script := "#!/bin/sh\necho \"$$\" > " + out + "\nfor a in \"$@\"; do echo \"$a\"; done >> " + out + "\nexit 42\n"
	if err := os.WriteFile(filepath.Join(dir, "llmslots-etcd"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, out
}

func TestEtcdExecsClusterCommand(t *testing.T) {
	e := newEnv(t)
	stubDir, out := stubCluster(t)
	for _, tt := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"run", "--etcd", "h1:2379,h2:2379", "--pool", "codex", "--max", "3", "--ttl", "4s", "--", "codex", "--etcd", "x"}},
		{nil, []string{"run", "--max=3", "-etcd=h1:2379", "--", "true"}},
		{nil, []string{"run", "--detect", "codex", "--max", "3", "--etcd", "h1:2379", "--", "true"}},
		{[]string{"LLMSLOTS_ETCD=h1:2379"}, []string{"run", "--max", "3", "--", "true"}},
		{[]string{"LLMSLOTS_ETCD=h1:2379"}, []string{"status", "--json", "--max", "3"}},
		{nil, []string{"status", "--etcd", "h1:2379", "--max", "3"}},
		{[]string{"LLMSLOTS_ETCD=h1:2379"}, []string{"pause", "--pool", "codex", "--for", "30s", "--reason", "429s"}},
		{nil, []string{"pause", "--for=1m", "--etcd", "h1:2379"}},
		{[]string{"LLMSLOTS_ETCD=h1:2379"}, []string{"resume", "--pool", "codex"}},
	} {
		os.Remove(out)
		cmd := exec.Command(bin, tt.args...)
		cmd.Env = e.with(append([]string{"PATH=" + stubDir}, tt.env...)...)
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 42 {
			t.Errorf("llmslots %q: exit %d (%v); want the stub's 42", tt.args, code, err)
			continue
		}
		lines := strings.Split(strings.TrimSuffix(readFile(t, out), "\n"), "\n")
		if lines[0] != strconv.Itoa(cmd.Process.Pid) {
			t.Errorf("llmslots %q: the stub ran as pid %s, llmslots was %d; want it exec'ed", tt.args, lines[0], cmd.Process.Pid)
		}
		if !slices.Equal(lines[1:], tt.args) {
			t.Errorf("llmslots %q: the stub got %q", tt.args, lines[1:])
		}
	}

	// The host's pool, even with LLMSLOTS_ETCD set: --etcd "", --dir,
	// and an --etcd that belongs to the command.
	for _, tt := range []struct {
		env  []string
		args []string
	}{
		{[]string{"LLMSLOTS_ETCD=h1:2379"}, []string{"status", "--etcd", "", "--max", "2"}},
		{[]string{"LLMSLOTS_ETCD=h1:2379"}, []string{"run", "--dir", e.dir, "--max", "2", "--", "true"}},
		{nil, []string{"run", "--max", "2", "--", "true", "--etcd", "h1:2379"}},
		{[]string{"LLMSLOTS_ETCD=h1:2379"}, []string{"pause", "--dir", e.dir, "--for", "1s"}},
		{[]string{"LLMSLOTS_ETCD=h1:2379"}, []string{"resume", "--etcd", "", "--dir", e.dir}},
	} {
		os.Remove(out)
		r := e.runEnv(e.with(append([]string{"PATH=" + stubDir + ":" + os.Getenv("PATH")}, tt.env...)...), "", tt.args...)
		if r.code != 0 {
			t.Errorf("llmslots %q: exit %d, %q; want the host's pool", tt.args, r.code, r.stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("llmslots %q ran llmslots-etcd", tt.args)
		}
	}
}

// Without llmslots-etcd next to llmslots or on PATH, --etcd says how to
// install it.
func TestEtcdWithoutClusterCommand(t *testing.T) {
	e := newEnv(t)
	empty := t.TempDir()
	for _, tt := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"run", "--etcd", "127.0.0.1:1", "--max", "1", "--", "true"}},
		{[]string{"LLMSLOTS_ETCD=127.0.0.1:1"}, []string{"status"}},
		{[]string{"LLMSLOTS_ETCD=127.0.0.1:1"}, []string{"pause", "--for", "1m"}},
	} {
		r := e.runEnv(e.with(append([]string{"PATH=" + empty}, tt.env...)...), "", tt.args...)
		if r.code != exitError || !strings.Contains(r.stderr, "go install github.com/llmslots/llmslots/etcdslots/cmd/llmslots-etcd@latest") || !strings.Contains(r.stderr, "go install ./etcdslots/cmd/llmslots-etcd") {
			t.Errorf("llmslots %q: exit %d, %q; want %d and the install hint", tt.args, r.code, r.stderr, exitError)
		}
	}
}

// Every flag of run, status, pause and resume that takes a value is in
// valueFlags, or wantsCluster would take its value for the command and miss
// an --etcd after it (run --detect codex --etcd ... ran the host's pool).
func TestValueFlagsAreKnown(t *testing.T) {
	e := newEnv(t)
	withValue := regexp.MustCompile(`(?m)^  --(\S+) \S+$`)
	for _, sub := range []string{"run", "status", "pause", "resume"} {
		r := e.run(sub, "--help")
		for _, m := range withValue.FindAllStringSubmatch(r.stdout, -1) {
			if !valueFlags[m[1]] {
				t.Errorf("%s --%s takes a value, but is not in valueFlags", sub, m[1])
			}
		}
	}
}
