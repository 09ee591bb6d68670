package filelock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The in-line lock of a ticket name: independent of the file's flock, of
// other names' in-line locks, and waited on until its holder drops it.
func TestInLineLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spare")
	holder, err := Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if ok, err := TryLock(holder); !ok || err != nil {
		t.Fatalf("TryLock: %v %v", ok, err) // the spare's flock, held throughout
	}
	if !LockInLine(holder, "t-a") {
		t.Fatal("LockInLine on a file whose flock this holder holds failed")
	}
	other, err := os.OpenFile(path, os.O_RDWR, 0) // a write lock needs a descriptor open for writing
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if LockInLine(other, "t-a") {
		t.Fatal("a second open file took the in-line lock already held")
	}
	if !LockInLine(other, "t-b") {
		t.Fatal("another name's in-line lock was refused")
	}
	UnlockInLine(other, "t-b")

	done := make(chan error, 1)
	go func() { done <- WaitNotInLine(other, "t-a") }()
	select {
	case err := <-done:
		t.Fatalf("WaitNotInLine returned (%v) while the lock was held", err)
	case <-time.After(100 * time.Millisecond):
	}
	UnlockInLine(holder, "t-a")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitNotInLine did not return once the lock was dropped")
	}
	// The wait left nothing held: the holder takes the lock again, and
	// the flock was never touched.
	if !LockInLine(holder, "t-a") {
		t.Fatal("the wait kept the in-line lock")
	}
	if ok, _ := TryLock(other); ok {
		t.Fatal("the spare's flock was lost")
	}
}
