//go:build linux

package llmslots

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/watch"
)

// The spare is one file, reused: while a slot is held the slot's name is a
// second link to it, locked all along; Release removes only that name.
func TestSpareIsReusedAndStaysLocked(t *testing.T) {
	needSpares(t)
	p := newTestPool(t)
	g := mustAcquire(t, p, 2, 0)
	if g.spare == nil {
		t.Fatal("slot not taken through a spare")
	}
	spare, slot := g.spare.path, g.Path()
	fi, err := os.Lstat(slot)
	if err != nil {
		t.Fatal(err)
	}
	if n := fi.Sys().(*syscall.Stat_t).Nlink; n != 2 {
		t.Fatalf("held slot file has %d links; want 2 (slot and spare)", n)
	}
	if res, _ := probe(slot, probeLook); res.state != StateHeld || res.rec.PID != os.Getpid() {
		t.Fatalf("probe of the held slot: %+v", res)
	}
	if err := g.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(slot); !os.IsNotExist(err) {
		t.Fatalf("slot file after Release: %v", err)
	}
	// The spare is still locked: no sweeper may take it.
	if res, _ := probe(spare, probeRemove); res.state != StateHeld || res.removed {
		t.Fatalf("probe of the idle spare: %+v; want held, kept", res)
	}
	g2 := mustAcquire(t, p, 2, 0)
	defer g2.Release()
	if g2.spare == nil || g2.spare.path != spare {
		t.Fatalf("second acquire used %v; want the spare %s again", g2.spare, spare)
	}
	if names := spareNames(t, p.Dir()); len(names) != 1 {
		t.Fatalf("spares in the pool: %v; want one", names)
	}
	// Two slots held at once need two spares.
	g3 := mustAcquire(t, p, 2, 0)
	defer g3.Release()
	if g3.spare == nil || g3.spare == g2.spare {
		t.Fatalf("concurrent guards share a spare: %v %v", g2.spare, g3.spare)
	}
}

// A spare's record says when the slot was taken, each time.
func TestSpareRecordIsFresh(t *testing.T) {
	needSpares(t)
	p := newTestPool(t, WithLabel("first"))
	g := mustAcquire(t, p, 1, 0)
	first := g.AcquiredAt()
	g.Release()
	q, _ := NewPool(p.Dir(), WithLabel("a longer second label"))
	g = mustAcquire(t, q, 1, 0)
	defer g.Release()
	rec, err := readRecord(g.Path())
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Since.Equal(g.AcquiredAt()) || !rec.Since.After(first) || rec.Label != "a longer second label" || rec.PID != os.Getpid() {
		t.Fatalf("record %+v; want since %v, the second label", rec, g.AcquiredAt())
	}
	q2, _ := NewPool(p.Dir()) // no label: a shorter record, the file cut to fit
	g.Release()
	g = mustAcquire(t, q2, 1, 0)
	data, _ := os.ReadFile(g.Path())
	if strings.Contains(string(data), "label") || !strings.HasSuffix(string(data), "\n") {
		t.Fatalf("record %q; want no label, and nothing left of the longer one", data)
	}
}

// A process that dies leaves its spare; one killed holding a slot leaves
// the slot's name too. The next process to make a spare takes the slot at
// once and sweeps the dead spares away, but never a live process's.
func TestDeadProcessesSparesAreSwept(t *testing.T) {
	needSpares(t)
	dir := t.TempDir()
	live := startHelper(t, "hold", dir, 3)
	live.held()
	exited := startHelper(t, "hold", dir, 3)
	exited.held()
	exited.stdin.Close()
	if l := exited.line(); l != "released" {
		t.Fatalf("helper: %q", l)
	}
	exited.cmd.Wait()
	killed := startHelper(t, "hold", dir, 3) // sweeps the exited helper's spare
	killed.held()
	killed.kill()
	want := func(pids ...int) {
		t.Helper()
		names := spareNames(t, dir)
		if len(names) != len(pids) {
			t.Fatalf("spares %v; want one each of pids %v", names, pids)
		}
	next:
		for _, n := range names {
			for _, pid := range pids {
				if strings.HasPrefix(n, sparePrefix+strconv.Itoa(pid)+"-") {
					continue next
				}
			}
			t.Fatalf("spare %s is not one of pids %v", n, pids)
		}
	}
	want(live.pid(), killed.pid())

	p, _ := NewPool(dir)
	g1 := mustAcquire(t, p, 3, 0) // the free slot
	g2 := mustAcquire(t, p, 3, 0) // the killed helper's
	defer g1.Release()
	defer g2.Release()
	want(live.pid(), os.Getpid(), os.Getpid())
}

// A spare whose lock a child shares (Inherit) is never reused: the next
// acquire takes a new one, and Release removes the shared one's name.
func TestInheritedSpareIsNotReused(t *testing.T) {
	needSpares(t)
	p := newTestPool(t)
	g := mustAcquire(t, p, 1, 0)
	spare := g.spare.path
	cmd := exec.Command("sleep", "0.1")
	if err := g.Inherit(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if err := g.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(spare); !os.IsNotExist(err) {
		t.Fatalf("the handed-on spare is still there: %v", err)
	}
	g2 := mustAcquire(t, p, 1, 0)
	defer g2.Release()
	if g2.spare == nil || g2.spare.path == spare {
		t.Fatalf("the handed-on spare was reused")
	}
}

// RemoveDeadWaiters (llmslots cleanup) sweeps dead processes' spares too.
func TestCleanupSweepsSpares(t *testing.T) {
	needSpares(t)
	dir := t.TempDir()
	h := startHelper(t, "hold", dir, 1)
	h.held()
	h.kill()
	dead := spareNames(t, dir)
	if len(dead) != 1 {
		t.Fatalf("spares: %v", dead)
	}
	p, _ := NewPool(dir)
	if _, err := p.RemoveDeadWaiters(); err != nil {
		t.Fatal(err)
	}
	if names := spareNames(t, dir); len(names) != 0 {
		t.Fatalf("spares after cleanup: %v", names)
	}
	// The killed holder's slot name stays until the slot is reclaimed.
	g := mustAcquire(t, p, 1, 0)
	g.Release()
}

// A pool's spare is made in the pool's own directory, with the group's
// mode in a group's pool.
func TestSpareLivesInThePool(t *testing.T) {
	needSpares(t)
	p := newTestPool(t)
	g := mustAcquire(t, p, 1, 0)
	defer g.Release()
	if filepath.Dir(g.spare.path) != p.Dir() {
		t.Fatalf("spare %s outside the pool %s", g.spare.path, p.Dir())
	}
	fi, _ := os.Stat(g.spare.path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("spare mode %v; want 0600", fi.Mode())
	}
}

// Where hard links are refused (EPERM: vfat, some FUSE filesystems, a
// security policy), the pool falls back to creating each slot file, at
// once and for good, and leaves no spare behind.
func TestNoLinksFallsBackToCreate(t *testing.T) {
	needSpares(t)
	calls := 0
	linkFile = func(oldname, newname string) error {
		calls++
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EPERM}
	}
	defer func() { linkFile = os.Link }()
	p := newTestPool(t)
	for i := range 3 {
		g := mustAcquire(t, p, 2, 0)
		if g.spare != nil {
			t.Fatalf("acquire %d: held through a spare the filesystem cannot link", i)
		}
		if rec, err := readRecord(g.Path()); err != nil || rec.PID != os.Getpid() {
			t.Fatalf("record %+v %v", rec, err)
		}
		if err := g.Release(); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Fatalf("link tried %d times; want once, then never again for this pool", calls)
	}
	if names := spareNames(t, p.Dir()); len(names) != 0 {
		t.Fatalf("spares left: %v", names)
	}
}

// A pool directory removed while this process keeps a spare in it (a
// cache cleaner, logind at logout): the next acquire makes the directory
// again and a new spare there.
func TestSpareSurvivesPoolDirRemoval(t *testing.T) {
	needSpares(t)
	p := newTestPool(t)
	mustAcquire(t, p, 1, 0).Release()
	if err := os.RemoveAll(p.Dir()); err != nil {
		t.Fatal(err)
	}
	g := mustAcquire(t, p, 1, 0)
	if err := g.Release(); err != nil {
		t.Fatal(err)
	}
	g = mustAcquire(t, p, 1, 0)
	defer g.Release()
	if g.spare == nil || !filelock.StillAt(g.spare.path, g.spare.info) {
		t.Fatalf("after the directory came back, slot held through %+v; want a spare in the new directory", g.spare)
	}
	if names := spareNames(t, p.Dir()); len(names) != 1 {
		t.Fatalf("spares %v; want one", names)
	}
}

// sparesOff reports whether this run takes every slot the classic way:
// LLMSLOTS_TEST_NOSPARES, or the portable path, which has no spares, as
// macOS and the BSDs have none.
func sparesOff() bool { return testNoSpares || watch.ForcePortable }

// needSpares skips a test of the spares themselves where there are none.
func needSpares(t *testing.T) {
	t.Helper()
	if sparesOff() {
		t.Skip("no spares on this run (LLMSLOTS_TEST_NOSPARES or LLMSLOTS_TEST_PORTABLE)")
	}
}
