//go:build linux

package llmslots

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/llmslots/llmslots/internal/slotfile"
)

const nobody = 65534 // uid and gid of nobody / nogroup

// startHelperAs runs a helper as another user.
func startHelperAs(t *testing.T, uid, gid int, mode, dir string, max int, env ...string) *helper {
	t.Helper()
	return launchHelper(t, asUser(helperCmd(binaryForOthers(t), mode, dir, max, env...), uid, gid))
}

// Two users, one group, one limit: a process of each holds a slot, a dead
// holder's slot is reclaimed by the other user, and a waiter of one user is
// woken by the other's release.
func TestGroupPoolIsSharedAcrossUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as two users")
	}
	dir := filepath.Join(sharedTempDir(t), "pool")
	p, err := NewPool(dir, WithGroup(nobody))
	if err != nil {
		t.Fatal(err)
	}
	mine := mustAcquire(t, p, 2, 0) // slot 0, held by root
	fi, _ := os.Stat(dir)
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSetgid == 0 || fi.Mode().Perm() != 0o770 || st.Gid != nobody {
		t.Fatalf("pool directory: mode %v gid %d; want setgid 0770, group %d", fi.Mode(), st.Gid, nobody)
	}
	sfi, _ := os.Stat(mine.Path())
	if sfi.Mode().Perm() != slotfile.GroupFileMode || sfi.Sys().(*syscall.Stat_t).Gid != nobody {
		t.Fatalf("slot file: mode %v gid %d", sfi.Mode(), sfi.Sys().(*syscall.Stat_t).Gid)
	}
	env := EnvGroup + "=" + strconv.Itoa(nobody)

	// A root holder dies; a nobody process reclaims its slot.
	dead := startHelper(t, "hold", dir, 2, env)
	if dead.held() != 1 {
		t.Fatal("root helper did not take slot 1")
	}
	dead.kill()
	other := startHelperAs(t, nobody, nobody, "hold", dir, 2, env)
	if id := other.held(); id != 1 {
		t.Fatalf("nobody's helper took slot %d; want 1, reclaimed", id)
	}
	if _, err := p.Acquire(2, 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third holder: %v", err)
	}
	status, err := p.ReadStatus(2)
	if err != nil || status.Slots[1].State != StateHeld || status.Slots[1].PID != other.pid() {
		t.Fatalf("root's view of nobody's slot: %+v %v", status.Slots, err)
	}

	// A nobody waiter is woken by root's release.
	waiter := startHelperAs(t, nobody, nobody, "hold", dir, 2, env)
	waitForWaiters(t, p, 2, 1)
	mine.Release()
	if id := waiter.held(); id != 0 {
		t.Fatalf("waiter took slot %d", id)
	}
	other.stdin.Close()
	waiter.stdin.Close()
	if other.line() != "released" || waiter.line() != "released" {
		t.Fatal("helpers did not release")
	}
}

func TestGroupPoolRefusesUnsafeDirectories(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give directories away")
	}
	cases := []struct {
		name string
		gid  int
		mode os.FileMode
		want string
	}{
		{"another group", 0, 0o2770, "belongs to group 0, not to the pool's group 65534"},
		{"writable by others", nobody, 0o2777, "writable by others"},
		{"group cannot write", nobody, 0o2750, "does not give its group full access"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(sharedTempDir(t), "pool")
			os.Mkdir(dir, 0o700)
			os.Chown(dir, 0, c.gid)
			os.Chmod(dir, c.mode)
			p, _ := NewPool(dir, WithGroup(nobody))
			if _, err := p.Acquire(1, 0); !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want ErrUnsafeDir saying %q", err, c.want)
			}
		})
	}
	t.Run("not a member", func(t *testing.T) {
		dir := filepath.Join(sharedTempDir(t), "pool")
		p, _ := NewPool(dir, WithGroup(0))
		mustAcquire(t, p, 1, 0) // root makes it: group 0, 2770
		h := startHelperAs(t, nobody, nobody, "hold", dir, 1, EnvGroup+"=0")
		if l := h.line(); !strings.Contains(l, "not a member of group 0") {
			t.Fatalf("nobody's helper said %q", l)
		}
	})
	t.Run("private pool in a group's directory", func(t *testing.T) {
		dir := filepath.Join(sharedTempDir(t), "pool")
		os.Mkdir(dir, 0o700)
		os.Chown(dir, nobody, nobody)
		os.Chmod(dir, 0o2770)
		p, _ := NewPool(dir)
		if _, err := p.Acquire(1, 0); !errors.Is(err, ErrUnsafeDir) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestGroupSettings(t *testing.T) {
	if _, err := NewPool(t.TempDir(), WithGroup(-1)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("WithGroup(-1): %v", err)
	}
	cases := []struct {
		env     string
		wantGid int
		wantErr string
	}{
		{"", -1, ""},
		{"65534", 65534, ""},
		{"nogroup", 65534, ""},
		{"no-such-group-here", 0, "neither a group name nor a gid"},
		{"-3", 0, "neither a group name nor a gid"},
	}
	for _, c := range cases {
		t.Run(c.env, func(t *testing.T) {
			t.Setenv(EnvGroup, c.env)
			p, err := NewPool(t.TempDir())
			switch {
			case c.wantErr != "":
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v; want ErrInvalid saying %q", err, c.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case c.wantGid < 0 && p.group.shared, c.wantGid >= 0 && (!p.group.shared || p.group.gid != c.wantGid):
				t.Fatalf("group %+v; want gid %d", p.group, c.wantGid)
			}
		})
	}
}
