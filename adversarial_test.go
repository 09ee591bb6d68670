//go:build linux

package llmslots

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Adversarial filesystem tests: each ends in a clear outcome (the pool
// works, or a clear error), never an over-grant, a hang or a panic.

// holdForeign makes a slot file at path with content and holds its lock
// from this process through its own open file, as another program (or a
// process in another container) sharing the directory would.
func holdForeign(t *testing.T, path string, content []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
}

// deadPid returns the pid of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	h := startHelper(t, "hold", t.TempDir(), 1)
	h.held()
	h.kill()
	return h.pid()
}

// The pool path may be a symlink to a directory: the checks apply to the
// directory it leads to, and both names share one limit. A symlink to a
// directory others may write is refused like the directory itself, and a
// dangling one is not followed to create its target.
func TestPoolDirectoryBehindASymlink(t *testing.T) {
	t.Run("to a directory of ours", func(t *testing.T) {
		tmp := t.TempDir()
		real, link := filepath.Join(tmp, "real"), filepath.Join(tmp, "link")
		os.Mkdir(real, 0o700)
		if err := os.Symlink(real, link); err != nil {
			t.Fatal(err)
		}
		byLink, _ := NewPool(link)
		byReal, _ := NewPool(real)
		g := mustAcquire(t, byLink, 1, 0)
		if _, err := os.Stat(byReal.SlotPath(0)); err != nil {
			t.Fatalf("the slot file is not in the symlink's target: %v", err)
		}
		if _, err := byReal.Acquire(1, 0); !errors.Is(err, ErrBusy) {
			t.Fatalf("the target's own name over-granted: %v", err)
		}
		if st, err := byReal.ReadStatus(1); err != nil || st.Slots[0].State != StateHeld || st.Slots[0].PID != os.Getpid() {
			t.Fatalf("status by the real name: %+v %v", st, err)
		}
		if err := g.Release(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(byReal.SlotPath(0)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("release through the symlink left the file: %v", err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatalf("the symlink itself was changed: %v", err)
		}
	})
	for _, perm := range []os.FileMode{0o777, 0o777 | os.ModeSticky, 0o770} {
		t.Run("to a directory mode "+perm.String(), func(t *testing.T) {
			tmp := t.TempDir()
			shared, link := filepath.Join(tmp, "shared"), filepath.Join(tmp, "link")
			os.Mkdir(shared, 0o700)
			if err := os.Chmod(shared, perm); err != nil {
				t.Fatal(err)
			}
			os.Symlink(shared, link)
			p, _ := NewPool(link)
			if _, err := p.Acquire(1, 0); !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), "writable by group or others") {
				t.Fatalf("Acquire: %v; want ErrUnsafeDir", err)
			}
			if _, err := p.ReadStatus(1); !errors.Is(err, ErrUnsafeDir) {
				t.Fatalf("ReadStatus: %v; want ErrUnsafeDir", err)
			}
			if err := p.ForceRelease(0); !errors.Is(err, ErrUnsafeDir) {
				t.Fatalf("ForceRelease: %v; want ErrUnsafeDir", err)
			}
			if entries, _ := os.ReadDir(shared); len(entries) != 0 {
				t.Fatalf("files made in the shared directory: %v", entries)
			}
		})
	}
	t.Run("replacing the directory while a slot is held", func(t *testing.T) {
		// Like removing the directory (README: What it does not
		// guarantee): the holder's file leaves with the old directory,
		// so the pool starts afresh in the new one. What must still
		// hold: the new directory is checked, and the old holder's
		// release never deletes the new holder's file.
		tmp := t.TempDir()
		dir, other := filepath.Join(tmp, "pool"), filepath.Join(tmp, "other")
		p, _ := NewPool(dir)
		old := startHelper(t, "hold", dir, 1)
		old.held()
		if err := os.Rename(dir, dir+".old"); err != nil {
			t.Fatal(err)
		}
		os.Mkdir(other, 0o700)
		os.Symlink(other, dir)
		g, err := p.Acquire(1, 0)
		if err != nil {
			t.Fatalf("Acquire after the swap: %v", err)
		}
		defer g.Release()
		if _, err := os.Stat(filepath.Join(other, "slot-0.lock")); err != nil {
			t.Fatalf("the new holder's file is not in the new directory: %v", err)
		}
		old.stdin.Close()
		if l := old.line(); l != "released" {
			t.Fatalf("old holder: %q", l)
		}
		if st, err := p.ReadStatus(1); err != nil || st.Slots[0].State != StateHeld {
			t.Fatalf("the old holder's release freed the new holder's slot: %+v %v", st, err)
		}
		// A swap to a directory others may write is refused by a fresh
		// pool (a pool that has checked its directory once does not
		// look again until it must recreate it).
		os.Remove(dir)
		shared := filepath.Join(tmp, "shared")
		os.Mkdir(shared, 0o700)
		os.Chmod(shared, 0o777)
		os.Symlink(shared, dir)
		fresh, _ := NewPool(dir)
		if _, err := fresh.Acquire(1, 0); !errors.Is(err, ErrUnsafeDir) {
			t.Fatalf("Acquire through a swapped symlink to a 0777 directory: %v", err)
		}
	})
	t.Run("dangling", func(t *testing.T) {
		tmp := t.TempDir()
		target, link := filepath.Join(tmp, "target"), filepath.Join(tmp, "link")
		os.Symlink(target, link)
		p, _ := NewPool(link)
		_, err := p.Acquire(1, 0)
		if err == nil || !strings.Contains(err.Error(), "cannot create slot directory") {
			t.Fatalf("Acquire: %v; want an error saying the directory cannot be made", err)
		}
		if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the dangling symlink was followed: %v", err)
		}
		if st, err := p.ReadStatus(2); err != nil || st.Free != 2 {
			t.Fatalf("status: %+v %v", st, err)
		}
	})
}

// A socket at a slot path is treated like the planted files of
// TestPlantedSlotFilesAreNeverFollowedOrUsed: invalid, skipped, named,
// never removed.
func TestPlantedSocketIsNeverUsed(t *testing.T) {
	p := newTestPool(t)
	mustAcquire(t, p, 1, 0).Release()
	l, err := net.Listen("unix", p.SlotPath(0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := p.Acquire(1, 0); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "is a socket") {
		t.Fatalf("Acquire: %v; want ErrBusy naming the socket", err)
	}
	if g := mustAcquire(t, p, 2, 0); g.SlotID() != 1 {
		t.Fatalf("took slot %d; want 1", g.SlotID())
	}
	if st, err := p.ReadStatus(2); err != nil || st.Slots[0].State != StateInvalid || st.Free != 0 {
		t.Fatalf("status %+v %v", st, err)
	}
	if err := p.ForceRelease(0); err == nil || errors.Is(err, ErrHeld) {
		t.Fatalf("ForceRelease: %v", err)
	}
	if fi, err := os.Lstat(p.SlotPath(0)); err != nil || fi.Mode()&fs.ModeSocket == 0 {
		t.Fatalf("the socket was removed or replaced: %v", err)
	}
}

// Empty and garbage slot files: unlocked, they are stale (a holder that
// died before writing, or another tool's leftovers) and Acquire reclaims
// them; locked, they are held by an unknown process and nothing frees them.
func TestEmptyAndGarbageSlotFiles(t *testing.T) {
	contents := map[string][]byte{
		"empty":        nil,
		"binary":       {0x00, 0xff, 0xfe, '\n', 0x1b, '[', '2', 'J', 0x7f},
		"no pid value": []byte("pid=\nhost=\nsince=yesterday\n"),
		"bad pid":      []byte("pid=-42\npid=0x10\npid=99999999999999999999999\n"),
		"zeros":        make([]byte, maxRecordRead),
		"no newline":   bytes.Repeat([]byte("label=x"), 2000),
	}
	for name, content := range contents {
		t.Run(name+" unlocked", func(t *testing.T) {
			p := newTestPool(t)
			mustAcquire(t, p, 1, 0).Release()
			os.WriteFile(p.SlotPath(0), content, 0o600)
			// Old enough not to be a file whose creator is about to lock it.
			old := time.Now().Add(-time.Hour)
			if err := os.Chtimes(p.SlotPath(0), old, old); err != nil {
				t.Fatal(err)
			}
			st, err := p.ReadStatus(1)
			if err != nil || st.Slots[0].State != StateStale || st.Slots[0].PID != 0 || st.Free != 1 {
				t.Fatalf("status %+v %v", st, err)
			}
			g := mustAcquire(t, p, 1, 0)
			if rec, _ := readRecord(p.SlotPath(0)); g.SlotID() != 0 || rec.PID != os.Getpid() {
				t.Fatalf("slot %d; record %+v; want slot 0 reclaimed and ours", g.SlotID(), rec)
			}
		})
		t.Run(name+" locked", func(t *testing.T) {
			p := newTestPool(t)
			mustAcquire(t, p, 1, 0).Release()
			holdForeign(t, p.SlotPath(0), content)
			st, err := p.ReadStatus(1)
			if err != nil || st.Slots[0].State != StateHeld || st.Active != 1 || st.Free != 0 || len(st.PIDs) != 0 {
				t.Fatalf("status %+v %v", st, err)
			}
			if _, err := p.Acquire(1, 0); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "held by pids unknown") {
				t.Fatalf("Acquire: %v", err)
			}
			if err := p.ForceRelease(0); !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "an unknown process") {
				t.Fatalf("ForceRelease: %v", err)
			}
			if stale, err := p.FindStale(1); err != nil || len(stale) != 0 {
				t.Fatalf("FindStale: %v %v", stale, err)
			}
		})
	}
}

// bytesRead is this process's count of bytes read by read-like system
// calls (rchar in /proc/self/io).
func bytesRead(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "rchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no rchar in /proc/self/io")
	return 0
}

// A huge slot file costs a reader no more than its first maxRecordRead
// bytes: status, the stale scan, the busy error and reclaiming read a
// bounded prefix (measured as bytes read by this process, not as time),
// and a record beyond the prefix is not seen.
func TestHugeSlotFilesAreReadByABoundedPrefix(t *testing.T) {
	const budget = 256 << 10 // far below any of the files
	rec := record{PID: os.Getpid(), Host: "h", Label: "first"}.marshal()
	cases := []struct {
		name    string
		make    func(path string) error
		wantPID int
		label   string
	}{
		{"1 GiB sparse after a record", func(path string) error {
			if err := os.WriteFile(path, rec, 0o600); err != nil {
				return err
			}
			return os.Truncate(path, 1<<30)
		}, os.Getpid(), "first"},
		{"10 MB real, a second record beyond the prefix", func(path string) error {
			junk := bytes.Repeat([]byte("x"), 10<<20)
			later := record{PID: 1, Label: "later"}.marshal()
			return os.WriteFile(path, slices.Concat(rec, junk, []byte("\n"), later), 0o600)
		}, os.Getpid(), "first"},
		{"10 MB, the record beyond the prefix", func(path string) error {
			junk := bytes.Repeat([]byte("x"), 10<<20)
			return os.WriteFile(path, append(junk, rec...), 0o600)
		}, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newTestPool(t)
			mustAcquire(t, p, 1, 0).Release()
			if err := c.make(p.SlotPath(0)); err != nil {
				t.Fatal(err)
			}
			// Unlocked: status, FindStale.
			before := bytesRead(t)
			st, err := p.ReadStatus(1)
			if err != nil || st.Slots[0].State != StateStale || st.Slots[0].PID != c.wantPID || st.Slots[0].Label != c.label {
				t.Fatalf("status %+v %v", st.Slots, err)
			}
			if stale, err := p.FindStale(1); err != nil || len(stale) != 1 {
				t.Fatalf("FindStale %v %v", stale, err)
			}
			if n := bytesRead(t) - before; n > budget {
				t.Fatalf("status and FindStale read %d bytes", n)
			}
			// Locked: status and the busy error.
			f, err := os.Open(p.SlotPath(0))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			unix.Flock(int(f.Fd()), unix.LOCK_EX)
			before = bytesRead(t)
			if st, err := p.ReadStatus(1); err != nil || st.Slots[0].State != StateHeld {
				t.Fatalf("status %+v %v", st.Slots, err)
			}
			if _, err := p.Acquire(1, 0); !errors.Is(err, ErrBusy) {
				t.Fatalf("Acquire: %v", err)
			}
			if n := bytesRead(t) - before; n > budget {
				t.Fatalf("status and Acquire read %d bytes", n)
			}
			// Unlocked again: reclaimed.
			f.Close()
			before = bytesRead(t)
			g := mustAcquire(t, p, 1, 0)
			if n := bytesRead(t) - before; n > budget {
				t.Fatalf("reclaiming read %d bytes", n)
			}
			if fi, err := os.Stat(p.SlotPath(0)); err != nil || fi.Size() > maxRecordRead || g.SlotID() != 0 {
				t.Fatalf("after reclaiming: %v, %v", fi, err)
			}
		})
	}
}

// interval is one holding interval a cycle helper reported.
type interval struct {
	pid        int
	slot       int
	start, end int64
}

// collectCycles reads every line of cycle helpers until they exit and
// returns their intervals and error lines.
func collectCycles(t *testing.T, hs []*helper) ([]interval, []string) {
	t.Helper()
	var ivs []interval
	var errs []string
	type line struct {
		pid  int
		text string
	}
	lines := make(chan line)
	for _, h := range hs {
		go func() {
			for h.out.Scan() {
				lines <- line{h.pid(), h.out.Text()}
			}
			lines <- line{h.pid(), ""}
		}()
	}
	timeout := time.After(60 * time.Second)
	for done := 0; done < len(hs); {
		select {
		case l := <-lines:
			f := strings.Fields(l.text)
			switch {
			case len(f) == 0:
				done++
			case f[0] == "interval" && len(f) == 4:
				var iv interval
				iv.pid = l.pid
				iv.slot, _ = strconv.Atoi(f[1])
				iv.start, _ = strconv.ParseInt(f[2], 10, 64)
				iv.end, _ = strconv.ParseInt(f[3], 10, 64)
				ivs = append(ivs, iv)
			default:
				errs = append(errs, l.text)
			}
		case <-timeout:
			t.Fatal("waiters still running after 60s: hung")
		}
	}
	return ivs, errs
}

// checkNoOverlap fails t if two intervals on one slot overlap, or more
// than max overlap at all.
func checkNoOverlap(t *testing.T, ivs []interval, max int) {
	t.Helper()
	for i, a := range ivs {
		overlapping := 1
		for j, b := range ivs {
			if i != j && a.start < b.end && b.start < a.end {
				overlapping++
				if a.slot == b.slot {
					t.Errorf("pids %d and %d both held slot %d", a.pid, b.pid, a.slot)
				}
			}
		}
		if overlapping > max {
			t.Errorf("%d holders at once around pid %d's interval; max %d", overlapping, a.pid, max)
		}
	}
}

// The pool directory, or its queue directory, removed while processes
// wait in line: every waiter ends within its wait, with slots taken one at
// a time from the new directory, or with an error; none hangs or crashes.
// The holder whose file went with the directory keeps running, as the
// README says (What it does not guarantee), and its release does not
// touch the new holders' files.
func TestDirectoryRemovedWhileWaitersWait(t *testing.T) {
	for _, what := range []string{"pool", "queue"} {
		t.Run(what, func(t *testing.T) {
			p := newTestPool(t)
			holder := startHelper(t, "hold", p.Dir(), 1)
			holder.held()
			var waiters []*helper
			for i := range 3 {
				waiters = append(waiters, startHelper(t, "cycle", p.Dir(), 1, "HELPER_CYCLES=2"))
				waitForWaiters(t, p, 1, i+1)
			}
			switch what {
			case "pool":
				// Rename, then delete: the pool path is gone at one instant.
				gone := p.Dir() + ".gone"
				if err := os.Rename(p.Dir(), gone); err != nil {
					t.Fatal(err)
				}
				if err := os.RemoveAll(gone); err != nil {
					t.Fatal(err)
				}
			case "queue":
				if err := os.RemoveAll(queueDir(p.Dir())); err != nil {
					t.Fatal(err)
				}
				// The holder leaves as usual, so the waiters have a slot.
				holder.stdin.Close()
				if l := holder.line(); l != "released" {
					t.Fatalf("holder: %q", l)
				}
			}
			ivs, errs := collectCycles(t, waiters)
			for _, e := range errs {
				t.Errorf("a waiter said %q", e)
			}
			if len(ivs)+len(errs) == 0 {
				t.Fatal("no waiter reported anything")
			}
			checkNoOverlap(t, ivs, 1)
			if what == "pool" {
				holder.stdin.Close()
				if l := holder.line(); l != "released" {
					t.Fatalf("holder whose file was removed: %q", l)
				}
			}
			// Nothing leaked: the slot is free for a fresh acquirer.
			if g, err := p.Acquire(1, 0); err != nil {
				t.Fatalf("after the waiters: %v", err)
			} else {
				g.Release()
			}
			t.Logf("%s directory removed: %d holding intervals, %d errors", what, len(ivs), len(errs))
		})
	}
}

// mountTmpfs mounts a small tmpfs at a new directory and returns it; it
// skips the test where mounting is not allowed.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(dir, 0o700)
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// fill uses up a filesystem's space (pages) and, with inodes, its inodes.
func fill(t *testing.T, dir string, inodes bool) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	for i := 0; inodes; i++ {
		f, err := os.Create(filepath.Join(dir, "inode-"+strconv.Itoa(i)))
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
		f.Close()
	}
}

// A full disk: with no room for the record, the slot is still held (the
// lock holds it), a warning is logged and status shows the holder as
// unknown; with no room for the file, or for a waiter's ticket, Acquire
// returns an error saying so. Never more than max either way.
func TestFullDisk(t *testing.T) {
	t.Run("no room for the record", func(t *testing.T) {
		withoutSpares(t) // a spare's record is written before the disk fills: see below
		mnt := mountTmpfs(t, "size=64k,nr_inodes=64,mode=0700")
		var logs bytes.Buffer
		p, _ := NewPool(filepath.Join(mnt, "pool"), WithLogger(debugLogger(&logs)))
		mustAcquire(t, p, 1, 0).Release() // the directory and queue
		fill(t, mnt, false)
		g, err := p.Acquire(1, 0)
		if err != nil {
			t.Fatalf("Acquire on a full disk: %v", err)
		}
		defer g.Release()
		if !strings.Contains(logs.String(), "record was not written") || !strings.Contains(logs.String(), "no space left on device") {
			t.Fatalf("no warning logged: %s", logs.String())
		}
		st, err := p.ReadStatus(1)
		if err != nil || st.Slots[0].State != StateHeld || st.Slots[0].PID != 0 || st.Free != 0 {
			t.Fatalf("status %+v %v", st, err)
		}
		other, _ := NewPool(p.Dir())
		if _, err := other.Acquire(1, 0); !errors.Is(err, ErrBusy) {
			t.Fatalf("a second Acquire on a full disk: %v; want ErrBusy", err)
		}
		if err := other.ForceRelease(0); !errors.Is(err, ErrHeld) {
			t.Fatalf("ForceRelease: %v; want ErrHeld", err)
		}
		if err := g.Release(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(p.SlotPath(0)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("released slot file left: %v", err)
		}
	})
	t.Run("a spare keeps its record on a full disk", func(t *testing.T) {
		// The spare made by the first acquire already has the page its
		// record lives in: rewriting it needs no space.
		mnt := mountTmpfs(t, "size=64k,nr_inodes=64,mode=0700")
		p, _ := NewPool(filepath.Join(mnt, "pool"))
		mustAcquire(t, p, 1, 0).Release()
		fill(t, mnt, false)
		g, err := p.Acquire(1, 0)
		if err != nil {
			t.Fatalf("Acquire on a full disk: %v", err)
		}
		if g.spare == nil {
			t.Fatal("the slot was not taken through the spare")
		}
		st, err := p.ReadStatus(1)
		if err != nil || st.Slots[0].State != StateHeld || st.Slots[0].PID != os.Getpid() || st.Free != 0 {
			t.Fatalf("status %+v %v; want held by this process", st, err)
		}
		other, _ := NewPool(p.Dir())
		if _, err := other.Acquire(1, 0); !errors.Is(err, ErrBusy) {
			t.Fatalf("a second Acquire on a full disk: %v; want ErrBusy", err)
		}
		if err := g.Release(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(p.SlotPath(0)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("released slot file left: %v", err)
		}
	})
	t.Run("no room for the file", func(t *testing.T) {
		mnt := mountTmpfs(t, "size=64k,nr_inodes=16,mode=0700")
		p, _ := NewPool(filepath.Join(mnt, "pool"))
		mustAcquire(t, p, 1, 0).Release()
		fill(t, mnt, true)
		_, err := p.Acquire(2, 0)
		if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "cannot create slot file") {
			t.Fatalf("Acquire: %v; want an error saying no space", err)
		}
		if st, err := p.ReadStatus(2); err != nil || st.Active != 0 {
			t.Fatalf("status %+v %v", st, err)
		}
	})
	t.Run("no room for a ticket", func(t *testing.T) {
		mnt := mountTmpfs(t, "size=64k,nr_inodes=16,mode=0700")
		p, _ := NewPool(filepath.Join(mnt, "pool"))
		g := mustAcquire(t, p, 1, 0)
		fill(t, mnt, true)
		other, _ := NewPool(p.Dir())
		// An error, not a wait that could never be woken in order.
		_, err := other.Acquire(1, time.Minute)
		if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "cannot take a ticket") {
			t.Fatalf("Acquire: %v; want an error saying no space for a ticket", err)
		}
		if names, _ := queueNames(queueDir(p.Dir()), ""); len(names) != 1 || names[0] != waitersFileName {
			t.Fatalf("queue holds %v", names)
		}
		if st, err := p.ReadStatus(1); err != nil || st.Active != 1 || st.Slots[0].PID != os.Getpid() {
			t.Fatalf("status %+v %v", st, err)
		}
		g.Release()
	})
}

// A storm of signals (each interrupting whatever system call a thread is
// in) while goroutines of another process contend for the slots: every
// acquire and release succeeds, and no slot is ever double-held.
func TestSignalStormDuringAcquireRelease(t *testing.T) {
	p := newTestPool(t)
	h := startHelper(t, "adv-eintr", p.Dir(), 2, "HELPER_GOROUTINES=4", "HELPER_CYCLES=150")
	if l := h.line(); l != "ready" {
		t.Fatalf("helper: %q", l)
	}
	stop := make(chan struct{})
	stormDone := make(chan int)
	go func() {
		sent := 0
		sigs := []syscall.Signal{syscall.SIGWINCH, syscall.SIGURG, syscall.SIGUSR1}
		for {
			select {
			case <-stop:
				stormDone <- sent
				return
			default:
			}
			if syscall.Kill(h.pid(), sigs[sent%len(sigs)]) != nil {
				stormDone <- sent
				return
			}
			sent++
			time.Sleep(20 * time.Microsecond) // pace, so the storm does not starve the machine
		}
	}()
	l := h.line()
	close(stop)
	sent := <-stormDone
	var acquired, violations, errs, received int
	var firstErr string
	_, err := fmt.Sscanf(l, "done acquired=%d violations=%d errors=%d signals=%d first_error=%s", &acquired, &violations, &errs, &received, &firstErr)
	if err != nil {
		t.Fatalf("helper: %q: %v", l, err)
	}
	t.Logf("%d signals sent, %d received; %d acquisitions", sent, received, acquired)
	if acquired != 4*150 || violations != 0 || errs != 0 {
		t.Fatalf("under a signal storm: %s", l)
	}
	if received == 0 {
		t.Fatalf("the storm never reached the helper (%d sent)", sent)
	}
}
