//go:build linux

package llmslots

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"unsafe"

	"golang.org/x/sys/unix"
)

// Hazards of the spare slot files (spare_unix.go), each found in review
// as a real bug and fixed: an over-grant, a lost slot and a spin. Each
// test states the guarantee it checks. With LLMSLOTS_TEST_NOSPARES=1 they
// run against the classic path, as a control.

// Never two holders through a spare handed on by a nested guard. A nested
// guard (WithGuard + AcquireContext) shares its outer guard's spare, and
// hands that open file to a child with Inherit. Were the spare reused
// after the outer guard's Release, a descendant of the child that kept
// the descriptor (a background process: the slot follows the whole
// process tree) would share the lock of whatever slot the spare is linked
// to next. Here, with max=1, this process takes slot 0 again; had it done
// so through the same spare, the descendant's Acquire would adopt the
// inherited descriptor (same file at slot-0, locked by its open file) and
// return at once: two holders of a pool of one. So handing on through any
// guard marks the spare spent. And since the descendant still holds the
// slot, Release hands it over: this process cannot take it again while the
// descendant lives.
func TestNestedInheritNeverReusesTheSpare(t *testing.T) {
	p := newTestPool(t)
	g := mustAcquire(t, p, 1, 0)
	if g.spare == nil && !sparesOff() {
		t.Skip("no spare here")
	}
	firstSpare := g.spare // nil in the classic control run (LLMSLOTS_TEST_NOSPARES=1)
	n, err := p.AcquireContext(WithGuard(context.Background(), g), 1)
	if err != nil || !n.nested() {
		t.Fatalf("nested acquire: %v", err)
	}
	tmp := t.TempDir()
	out, goFile, pidFile := filepath.Join(tmp, "out"), filepath.Join(tmp, "go"), filepath.Join(tmp, "pid")
	// The child is a shell that starts a background process (keeping fd 3
	// and the environment, as any shell does) and exits at once.
	late := helperCmd(os.Args[0], "late-acquire", p.Dir(), 1, "LATE_GO="+goFile)
	cmd := exec.Command("sh", "-c", `"$0" "$1" >"$2" 2>&1 & echo $! >"$3"`, late.Args[0], late.Args[1], out, pidFile)
	cmd.Env = late.Env
	if err := n.Inherit(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Run(); err != nil { // started, and waited for: the documented order
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if err := n.Release(); err != nil {
		t.Fatal(err)
	}
	if err := g.Release(); err != nil {
		t.Fatal(err)
	}
	// The background descendant still holds the slot's lock through the
	// descriptor it kept: the slot follows the process tree, so this
	// process must not get it again (issue 10: Release hands the slot
	// over).
	g2, err := p.Acquire(1, 0)
	if err == nil {
		defer g2.Release()
		t.Errorf("this process took slot %d again while a descendant of the child it handed the slot to still runs", g2.SlotID())
		if g2.spare != nil {
			t.Logf("re-acquired slot %d through spare %s (the handed-on one: %v)", g2.SlotID(), filepath.Base(g2.spare.path), g2.spare == firstSpare)
		}
	} else if !errors.Is(err, ErrBusy) {
		t.Fatal(err)
	}
	// Now the background descendant asks for a slot of the same pool of 1.
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var line string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(out)
		if i := strings.IndexByte(string(b), '\n'); i >= 0 {
			line = string(b[:i])
			break
		}
	}
	t.Logf("descendant says: %q", line)
	if g2 != nil && g2.spare != nil && g2.spare == firstSpare {
		t.Errorf("the handed-on spare was reused")
	}
	if g2 != nil && strings.HasPrefix(line, "held") {
		t.Errorf("over-grant: this process holds slot %d of a pool of 1 and a descendant of a child it handed a nested guard to also got %q", g2.SlotID(), line)
	}
}

// A released slot is free even when Release cannot see its name. Release
// removes the slot's name only if an lstat of the path finds its file
// there; if the lstat fails (here the pool directory is renamed for a
// moment; a chmod 000 would make it fail with EACCES), the name stays. A
// spare kept for reuse then, still linked as slot-0 and locked, would
// hold the slot for nobody for the life of the process. So a spare that
// may still have a slot's name is discarded, which drops its lock: the
// slot is then reclaimable as a dead holder's, as with a classic file.
func TestReleaseFreesTheSlotEvenIfItsNameCannotBeSeen(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "pool")
	p, _ := NewPool(dir)
	g := mustAcquire(t, p, 1, 0)
	if g.spare == nil && !sparesOff() {
		t.Skip("no spare here")
	}
	if err := os.Rename(dir, dir+".moved"); err != nil {
		t.Fatal(err)
	}
	relErr := g.Release()
	if err := os.Rename(dir+".moved", dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("Release returned %v; guard held: %v", relErr, g.Held())
	var fi unix.Stat_t
	unix.Stat(p.SlotPath(0), &fi)
	t.Logf("slot-0.lock after release: nlink=%d", fi.Nlink)

	h := startHelper(t, "hold", dir, 1)
	l := h.line()
	t.Logf("another process, Acquire(1, 10s): %q", l)
	st, _ := p.ReadStatus(1)
	t.Logf("status: slot 0 %s by pid %d (this process: %d, holding no guard)", st.Slots[0].State, st.Slots[0].PID, os.Getpid())
	_, selfErr := p.Acquire(1, 300*time.Millisecond)
	t.Logf("this process, Acquire(1, 300ms): %v", selfErr)
	if !strings.HasPrefix(l, "held") {
		t.Errorf("lost slot: the slot was released (Release returned %v) yet stays held by this process's idle spare", relErr)
	}
}

// Waiters on more pools than there are idle spares do not spin. The idle
// spares (maxIdleSpares) are shared by all pools. Were a waiter to take a
// spare per wake-up, with a waiter at the head of each of 9 pools in one
// process each wake-up would make a spare for its pool and evict another
// pool's idle one; discarding it deletes a name and closes a written file
// in that pool's directory (IN_DELETE, IN_CLOSE_WRITE), waking that pool's
// waiter, which would do the same, until a slot frees. So an acquire takes
// one spare for all its waiting. With slots held, nothing should happen
// while they wait.
func TestWaitersOnManyPoolsDoNotSpin(t *testing.T) {
	const pools = maxIdleSpares + 1
	var ps []*Pool
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ifd)
	for range pools {
		p := newTestPool(t)
		h := startHelper(t, "hold", p.Dir(), 1) // another process holds the one slot
		h.held()
		if _, err := unix.InotifyAddWatch(ifd, p.Dir(), unix.IN_CREATE); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	var creates, sparesMade int
	done := make(chan struct{})
	counted := make(chan struct{})
	go func() {
		defer close(counted)
		buf := make([]byte, 1<<16)
		for {
			n, err := unix.Read(ifd, buf)
			if err != nil || n <= 0 {
				return
			}
			for off := 0; off < n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				creates++
				if strings.HasPrefix(name, sparePrefix) {
					sparesMade++
				}
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	var ru0, ru1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if g, err := p.Acquire(1, 2*time.Second); err == nil {
				g.Release()
			}
		}()
	}
	wg.Wait()
	unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	close(done)
	// Wake the reader with one last event.
	os.WriteFile(filepath.Join(ps[0].Dir(), "x"), nil, 0o600)
	<-counted
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	t.Logf("%d waiters on %d pools for 2 s: %d spare files made, %d creations in all, %v CPU", pools, pools, sparesMade, creates, cpu)
	if sparesMade > 4*pools {
		t.Errorf("spin: %d spare files made while %d waiters waited 2 s on held slots (want about one per pool)", sparesMade, pools)
	}
}

// A nested guard whose outer guard is released shares a file that no
// longer holds the slot, and, as a spare, may soon hold another: handing
// it on would give that slot a second holder. Inherit and PrepareExec
// refuse.
func TestNestedGuardCannotHandOnAReleasedSlot(t *testing.T) {
	p := newTestPool(t)
	g := mustAcquire(t, p, 1, 0)
	n, err := p.AcquireContext(WithGuard(context.Background(), g), 1)
	if err != nil || !n.nested() {
		t.Fatalf("nested acquire: %v", err)
	}
	defer n.Release()
	first := g.spare
	if err := g.Release(); err != nil {
		t.Fatal(err)
	}
	if err := n.Inherit(exec.Command("true")); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "released by its outer guard") {
		t.Fatalf("Inherit after the outer Release: %v; want ErrInvalid", err)
	}
	if _, err := n.PrepareExec([]string{"true"}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PrepareExec after the outer Release: %v; want ErrInvalid", err)
	}
	// Nothing was handed on, so the spare is still good, and reused.
	g2 := mustAcquire(t, p, 1, 0)
	defer g2.Release()
	if !sparesOff() && (g2.spare == nil || g2.spare != first) {
		t.Errorf("second acquire used spare %v; want the first one, %v", g2.spare, first)
	}
}
