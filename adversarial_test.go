//go:build linux

package llmslots

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Adversarial filesystem tests: each ends in a clear outcome (the pool
// works, or a clear error), never an over-grant, a hang or a panic.

// The pool path may be a symlink to a directory: the checks apply to the
// directory it leads to, and both names share one limit. A symlink to a
// directory others may write is refused like the directory itself, and a
// dangling one is not followed to create its target.
func TestPoolDirectoryBehindASymlink(t *testing.T) {
	type symlinkCase struct {
		name string
		// target, unless "", is the name of what the pool path, a symlink,
		// leads to; a directory of mode perm unless perm is 0. With no
		// target the pool path is a plain name, not yet made.
		target string
		perm   os.FileMode
		test   func(t *testing.T, p *Pool, target string)
	}
	cases := []symlinkCase{{
		name: "to a directory of ours", target: "real", perm: 0o700,
		test: func(t *testing.T, byLink *Pool, real string) {
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
			if fi, err := os.Lstat(byLink.Dir()); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Fatalf("the symlink itself was changed: %v", err)
			}
		},
	}}
	for _, perm := range []os.FileMode{0o777, 0o777 | os.ModeSticky, 0o770} {
		cases = append(cases, symlinkCase{
			name: "to a directory mode " + perm.String(), target: "shared", perm: perm,
			test: func(t *testing.T, p *Pool, shared string) {
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
			},
		})
	}
	cases = append(cases, symlinkCase{
		name: "replacing the directory while a slot is held",
		test: func(t *testing.T, p *Pool, _ string) {
			// Like removing the directory (README: What it does not
			// guarantee): the holder's file leaves with the old directory,
			// so the pool starts afresh in the new one. What must still
			// hold: the new directory is checked, and the old holder's
			// release never deletes the new holder's file.
			dir := p.Dir()
			tmp := filepath.Dir(dir)
			other := filepath.Join(tmp, "other")
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
		},
	}, symlinkCase{
		name: "dangling", target: "target",
		test: func(t *testing.T, p *Pool, target string) {
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
		},
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			dir, target := filepath.Join(tmp, "pool"), ""
			if c.target != "" {
				dir, target = filepath.Join(tmp, "link"), filepath.Join(tmp, c.target)
				if c.perm != 0 {
					os.Mkdir(target, 0o700)
					if err := os.Chmod(target, c.perm); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.Symlink(target, dir); err != nil {
					t.Fatal(err)
				}
			}
			p, _ := NewPool(dir)
			c.test(t, p, target)
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
	cases := []struct {
		name   string
		mount  string // the tmpfs's options
		logged bool   // the pool logs to logs
		hold   bool   // the first slot stays held while the disk fills
		inodes bool   // use up the inodes too
		test   func(t *testing.T, p *Pool, first *Guard, logs *bytes.Buffer)
	}{{
		name:   "no room for the record",
		mount:  "size=64k,nr_inodes=64,mode=0700",
		logged: true,
		test: func(t *testing.T, p *Pool, _ *Guard, logs *bytes.Buffer) {
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
		},
	}, {
		name:   "no room for the file",
		mount:  "size=64k,nr_inodes=16,mode=0700",
		inodes: true,
		test: func(t *testing.T, p *Pool, _ *Guard, _ *bytes.Buffer) {
			_, err := p.Acquire(2, 0)
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "cannot create slot file") {
				t.Fatalf("Acquire: %v; want an error saying no space", err)
			}
			if st, err := p.ReadStatus(2); err != nil || st.Active != 0 {
				t.Fatalf("status %+v %v", st, err)
			}
		},
	}, {
		name:   "no room for a ticket",
		mount:  "size=64k,nr_inodes=16,mode=0700",
		hold:   true,
		inodes: true,
		test: func(t *testing.T, p *Pool, g *Guard, _ *bytes.Buffer) {
			other, _ := NewPool(p.Dir())
			// An error, not a wait that could never be woken in order.
			_, err := other.Acquire(1, time.Minute)
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "cannot take a ticket") {
				t.Fatalf("Acquire: %v; want an error saying no space for a ticket", err)
			}
			if names := queueFiles(t, p); len(names) != 0 {
				t.Fatalf("queue holds %v", names)
			}
			if st, err := p.ReadStatus(1); err != nil || st.Active != 1 || st.Slots[0].PID != os.Getpid() {
				t.Fatalf("status %+v %v", st, err)
			}
			g.Release()
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mnt := mountTmpfs(t, c.mount)
			var logs bytes.Buffer
			var opts []Option
			if c.logged {
				opts = append(opts, WithLogger(debugLogger(&logs)))
			}
			p, _ := NewPool(filepath.Join(mnt, "pool"), opts...)
			first := mustAcquire(t, p, 1, 0) // the directory and queue
			if !c.hold {
				first.Release()
			}
			fill(t, mnt, c.inodes)
			c.test(t, p, first, &logs)
		})
	}
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
