//go:build unix

package filelock

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TryLockPath takes a free lock, not a held one, and refuses what a slot
// path must not be: a symbolic link, and a FIFO without hanging.
func TestTryLockPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "slot-0.lock")
	holder, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := TryLock(holder); !ok || err != nil {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	if lk, locked, err := TryLockPath(path, os.O_RDONLY); lk != nil || locked || err != nil {
		t.Fatalf("held file: %v %v %v, want nil false nil", lk, locked, err)
	}
	holder.Close()
	lk, locked, err := TryLockPath(path, os.O_RDONLY)
	if !locked || err != nil {
		t.Fatalf("free file: %v %v", locked, err)
	}
	if fi, err := lk.Stat(); err != nil || !StillAt(path, fi) {
		t.Fatalf("Stat: %v", err)
	}
	lk.Unlock()

	link := filepath.Join(dir, "slot-1.lock")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, _, err := TryLockPath(link, os.O_RDONLY); err == nil {
		t.Error("a symbolic link was followed")
	}
	fifo := filepath.Join(dir, "slot-2.lock")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	if _, _, err := TryLockPath(fifo, os.O_RDONLY); errors.Is(err, fs.ErrNotExist) {
		t.Errorf("FIFO: %v", err)
	}
}
