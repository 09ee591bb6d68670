//go:build unix

package main

import (
	"strings"
	"testing"
)

// A bad flag is reported on one line that names the flag, the value as
// given and why it is refused, and points to --help: not the flag
// package's "parse error" followed by the whole usage, as the core
// command does (its TestFlagErrorsSayTheCause). Nothing here reaches a
// cluster: the endpoint is never dialled.
func TestFlagErrorsSayTheCause(t *testing.T) {
	e := env(t, "LLMSLOTS_ETCD=127.0.0.1:1")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--max", "1", "--wait", "5", "--", "true"}, "--wait 5: missing unit (e.g. 5s)"},
		{[]string{"run", "--max", "1", "--wait=soon", "--", "true"}, "--wait soon: not a duration"},
		{[]string{"run", "--max", "1", "--ttl", "5y", "--", "true"}, `--ttl 5y: unknown unit "y"`},
		{[]string{"run", "--max", "1", "--grace", "1", "--", "true"}, "--grace 1: missing unit (e.g. 1s)"},
		{[]string{"run", "--max", "abc", "--", "true"}, "--max abc: not a whole number"},
		{[]string{"run", "--max", "99999999999999999999", "--", "true"}, "--max 99999999999999999999: out of range"},
		{[]string{"run", "--max", "1", "--local-max", "x", "--", "true"}, "--local-max x: not a whole number"},
		{[]string{"run", "--max", "1", "--throttled-exit", "1.5", "--", "true"}, "--throttled-exit 1.5: not a whole number"},
		{[]string{"run", "--max", "1", "--quiet=maybe", "--", "true"}, "--quiet=maybe: want true or false"},
		{[]string{"run", "--max", "1", "--frobnicate", "--", "true"}, "unknown flag --frobnicate"},
		{[]string{"run", "--max", "1", "--exec", "--", "true"}, "--exec cannot be used with a cluster slot"},
		{[]string{"run", "--max"}, "--max needs a value N"},
		{[]string{"run", "--max", "1", "--pool", "Codex", "--", "true"}, "lowercase"},
		{[]string{"run", "--max", "1", "--pool", "a/b", "--", "true"}, "pool name may hold only [a-z0-9._-]"},
		{[]string{"run", "--max", "0", "--", "true"}, "--max must be 1..1024, got 0"},
		{[]string{"run", "--max", "1"}, "no command given"},
		{[]string{"status", "--max", "abc"}, "--max abc: not a whole number"},
		{[]string{"status", "--max", "1", "--timeout", "5"}, "--timeout 5: missing unit (e.g. 5s)"},
		{[]string{"status", "--max", "1", "--json=maybe"}, "--json=maybe: want true or false"},
		{[]string{"pause", "--for", "5"}, "--for 5: missing unit (e.g. 5s)"},
		{[]string{"pause"}, "--for is required"},
		{[]string{"resume", "--pool"}, "--pool needs a value NAME"},
		{[]string{"resume", "extra"}, `unexpected argument "extra"`},
	} {
		r := run(t, e, tt.args...)
		if r.code != exitUsage {
			t.Errorf("llmslots-etcd %q: exit %d, want %d; stderr %q", tt.args, r.code, exitUsage, r.stderr)
			continue
		}
		sub := name + " " + tt.args[0]
		if !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "\n") != 1 ||
			!strings.HasPrefix(r.stderr, sub+": ") || !strings.Contains(r.stderr, sub+" --help") ||
			strings.Contains(r.stderr, "parse error") {
			t.Errorf("llmslots-etcd %q said %q; want one line saying %q and pointing to %s --help", tt.args, r.stderr, tt.want, sub)
		}
	}
	if r := run(t, e, "frob"); r.code != exitUsage || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, `unknown subcommand "frob"; see llmslots-etcd help`) {
		t.Errorf("llmslots-etcd frob: exit %d, %q; want one line pointing to help", r.code, r.stderr)
	}
}
