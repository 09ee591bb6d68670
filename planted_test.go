//go:build unix

package llmslots

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Files no llmslots process made, found at slot paths: planted things
// (symlinks, pipes, directories, sockets), empty and garbage files, huge
// files. None is followed, deleted while it may be held, or read beyond a
// bounded prefix. Some of these tests have been tried on Linux only, and
// skip elsewhere.

// Something no llmslots process makes, planted at a slot path, is never
// followed, deleted or used: status calls it invalid, Acquire skips it and
// names it, ForceRelease refuses it, and the rest of the pool keeps
// working. (Deleting it would not be safe: between a look and a delete it
// could be swapped for a live holder's file.)
func TestPlantedSlotFilesAreNeverFollowedOrUsed(t *testing.T) {
	target := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(target, []byte("keep me"), 0o600)
	cases := []struct {
		name, what string
		plant      func(path string) error
	}{
		{"symlink", "a symbolic link", func(path string) error { return os.Symlink(target, path) }},
		{"fifo", "a named pipe", func(path string) error { return unix.Mkfifo(path, 0o600) }},
		{"directory", "a directory", func(path string) error { return os.Mkdir(path, 0o700) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newTestPool(t)
			mustAcquire(t, p, 1, 0).Release() // make the directory
			if err := c.plant(p.SlotPath(0)); err != nil {
				t.Fatal(err)
			}
			_, err := p.Acquire(1, 0)
			if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), p.SlotPath(0)+" is "+c.what) {
				t.Fatalf("Acquire: %v; want ErrBusy naming %s", err, c.what)
			}
			if g := mustAcquire(t, p, 2, 0); g.SlotID() != 1 {
				t.Fatalf("took slot %d; want 1, the rest of the pool", g.SlotID())
			}
			st, err := p.ReadStatus(2)
			if err != nil || st.Slots[0].State != StateInvalid || !strings.Contains(st.Slots[0].Detail, c.what) || st.Free != 0 {
				t.Fatalf("status %+v %v", st, err)
			}
			if stale, _ := p.FindStale(2); len(stale) != 0 {
				t.Fatalf("FindStale lists %v", stale)
			}
			if err := p.ForceRelease(0); err == nil || !strings.Contains(err.Error(), "remove it by hand") {
				t.Fatalf("ForceRelease: %v", err)
			}
			if _, err := os.Lstat(p.SlotPath(0)); err != nil {
				t.Fatal("the planted file was deleted")
			}
			if data, _ := os.ReadFile(target); string(data) != "keep me" {
				t.Fatal("symlink target was changed")
			}
			os.Remove(p.SlotPath(0)) // by hand, as the message says
			if g := mustAcquire(t, p, 1, 0); g.SlotID() != 0 {
				t.Fatal("slot 0 unusable after removal")
			}
		})
	}
}

// A socket at a slot path is treated like the planted files of
// TestPlantedSlotFilesAreNeverFollowedOrUsed: invalid, skipped, named,
// never removed.
func TestPlantedSocketIsNeverUsed(t *testing.T) {
	linuxOnly(t)
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
	linuxOnly(t)
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
	linuxOnly(t)
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

// Every slot below max holds what no llmslots process makes: nothing can
// free such a slot, so Acquire fails at once with the busy error naming
// them, whatever its wait. Before, it waited out the wait (forever for
// llmslots run without --wait).
func TestEverySlotUnusableFailsAtOnce(t *testing.T) {
	p := newTestPool(t)
	mustAcquire(t, p, 1, 0).Release() // makes the directory
	for id := range 2 {
		if err := os.Symlink("/nonexistent", p.SlotPath(id)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	_, err := p.Acquire(2, 10*time.Second)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v; want at once", took)
	}
	var busy *BusyError
	if !errors.As(err, &busy) || len(busy.Unusable) != 2 {
		t.Fatalf("got %v; want a BusyError naming 2 unusable slots", err)
	}
	for id := range 2 {
		if !strings.Contains(err.Error(), p.SlotPath(id)) {
			t.Errorf("error %q does not name %s", err, p.SlotPath(id))
		}
	}
	// One usable slot left: a caller waits for it as usual.
	if err := os.Remove(p.SlotPath(1)); err != nil {
		t.Fatal(err)
	}
	g := mustAcquire(t, p, 2, 0)
	if g.SlotID() != 1 {
		t.Fatalf("took slot %d", g.SlotID())
	}
	time.AfterFunc(50*time.Millisecond, func() { g.Release() })
	g2, err := p.Acquire(2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	g2.Release()
}

// .queue or .queue/waiters replaced by something llmslots never makes: a
// clear error naming the path and the fix, and a symbolic link is never
// followed. Before, every acquire failed with a raw error, even with free
// slots, and a .queue link was followed.
func TestReplacedQueueGivesAClearError(t *testing.T) {
	for _, c := range []struct {
		name  string
		plant func(t *testing.T, qdir, elsewhere string)
	}{
		{".queue a file", func(t *testing.T, qdir, _ string) { os.WriteFile(qdir, nil, 0o600) }},
		{".queue a dangling link", func(t *testing.T, qdir, _ string) { os.Symlink("/nonexistent", qdir) }},
		{".queue a link to a directory", func(t *testing.T, qdir, elsewhere string) { os.Symlink(elsewhere, qdir) }},
		{"waiters a directory", func(t *testing.T, qdir, _ string) {
			os.Mkdir(qdir, 0o700)
			os.Mkdir(filepath.Join(qdir, waitersFileName), 0o700)
		}},
		{"waiters a dangling link", func(t *testing.T, qdir, _ string) {
			os.Mkdir(qdir, 0o700)
			os.Symlink("/nonexistent", filepath.Join(qdir, waitersFileName))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, elsewhere := t.TempDir(), t.TempDir()
			p, err := NewPool(dir)
			if err != nil {
				t.Fatal(err)
			}
			c.plant(t, filepath.Join(dir, queueDirName), elsewhere)
			_, err = p.Acquire(1, 0)
			if err == nil || !strings.Contains(err.Error(), "llmslots never makes") || !strings.Contains(err.Error(), "rm -r "+filepath.Join(dir, queueDirName)) {
				t.Fatalf("got %v; want an error naming the path and the fix", err)
			}
			if entries, _ := os.ReadDir(elsewhere); len(entries) > 0 {
				t.Errorf("the link was followed: %s holds %d files", elsewhere, len(entries))
			}
		})
	}
}
