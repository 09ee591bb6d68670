//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/llmslots/llmslots/internal/cli"
)

// A ticket in a group's pool that this member can neither read nor lock
// (another member's, mode 0600: made by hand, or by a member whose umask
// or tool got in the way) cannot be told live or dead, so cleanup leaves
// it, and counts it as a waiter; it now says so, with whose it is and how
// to remove it, instead of "no stale slot files" (issue 22, item 23).
// Two real users act: daemon (uid 1) runs llmslots, the ticket is bin's
// (uid 2); both are members of nogroup (65534), the pool's group.
func TestCleanupSaysWhatItLeaves(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as two members of a group")
	}
	e := newEnv(t)
	shared, err := os.MkdirTemp("", "llmslots-cli-group-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	exe := filepath.Join(shared, "llmslots")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	parent := filepath.Join(shared, "group")
	for _, err := range []error{
		os.Chmod(shared, 0o755), os.WriteFile(exe, data, 0o755), os.Mkdir(parent, 0o700),
		os.Chown(parent, 0, 65534), os.Chmod(parent, 0o2770|os.ModeSetgid),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	pool := filepath.Join(parent, "pool")
	asDaemon := func(args ...string) result {
		t.Helper()
		cmd := exec.Command(exe, args...)
		cmd.Env = e.with("LLMSLOTS_GROUP=65534")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1, Gid: 1, Groups: []uint32{65534}}}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		r := result{stdout: out.String(), stderr: errb.String()}
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			r.code = cli.ExitStatus(exitErr.ProcessState)
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := asDaemon("run", "--dir", pool, "--max", "1", "--", "true"); r.code != 0 {
		t.Fatalf("making the pool: exit %d, %s", r.code, r.stderr)
	}
	ticket := filepath.Join(pool, ".queue", fmt.Sprintf("t-%020d-%010d-%06d", 1, 4242, 1))
	for _, err := range []error{
		os.WriteFile(ticket, []byte("pid=4242\n"), 0o600), os.Chown(ticket, 2, 65534), os.Chmod(ticket, 0o600),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"cleanup", "--dir", pool, "--max", "1"}, {"cleanup", "--dry-run", "--dir", pool, "--max", "1"}} {
		r := asDaemon(args...)
		if r.code != 0 {
			t.Fatalf("%q: exit %d, %s", args, r.code, r.stderr)
		}
		t.Logf("%q: %s", args, r.stdout)
		for _, want := range []string{"left " + ticket, "bin (uid 2)", "mode 0600", "pid 4242", "rm '" + ticket + "'"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%q said %q; want %q in it", args, r.stdout, want)
			}
		}
		if strings.Count(r.stdout, "\n") != 1 {
			t.Errorf("%q said %q; want one line", args, r.stdout)
		}
	}
	if _, err := os.Lstat(ticket); err != nil {
		t.Errorf("the ticket was removed: %v", err)
	}
}
