//go:build unix

package llmslots

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/llmslots/llmslots/internal/slotfile"
	"golang.org/x/sys/unix"
)

// BenchmarkAcquireRelease is the uncontended path: one Acquire(4, 0) and
// one Release on a pool nobody else uses.
func BenchmarkAcquireRelease(b *testing.B) { benchAcquireRelease(b) }

func benchAcquireRelease(b *testing.B) {
	p, err := NewPool(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		g, err := p.Acquire(4, 0)
		if err != nil {
			b.Fatal(err)
		}
		g.Release()
	}
}

// BenchmarkFloor is the least any lock-file slot can cost: create
// exclusively, flock, unlink, close, as bare system calls on the same
// kind of directory. BenchmarkAcquireRelease / BenchmarkFloor is the
// library's overhead.
func BenchmarkFloor(b *testing.B) {
	path := filepath.Join(b.TempDir(), "slot-0.lock")
	for b.Loop() {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			b.Fatal(err)
		}
		unix.Unlink(path)
		unix.Close(fd)
	}
}

// BenchmarkFloorWithRecord is the floor plus the one write of a record:
// the least a design that makes a new file per holder and records it can
// cost.
func BenchmarkFloorWithRecord(b *testing.B) {
	path := filepath.Join(b.TempDir(), "slot-0.lock")
	rec := slotfile.Self().Marshal()
	for b.Loop() {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		unix.Write(fd, rec)
		unix.Unlink(path)
		unix.Close(fd)
	}
}

// BenchmarkLineEmpty is what the queue adds to the uncontended path.
func BenchmarkLineEmpty(b *testing.B) {
	p, err := NewPool(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if err := p.prepare(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !p.line().Empty() {
			b.Fatal("waiters in an empty pool")
		}
	}
}

// BenchmarkReadStatus reads a pool of 8 with 4 slots held.
func BenchmarkReadStatus(b *testing.B) {
	p, err := NewPool(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for range 4 {
		g, err := p.Acquire(8, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer g.Release()
	}
	for b.Loop() {
		if _, err := p.ReadStatus(8); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReclaim takes a slot whose holder died: the file is there and
// its lock is free.
func BenchmarkReclaim(b *testing.B) {
	p, err := NewPool(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		os.WriteFile(p.SlotPath(0), []byte("pid=999999\n"), 0o600)
		g, err := p.Acquire(1, 0)
		if err != nil {
			b.Fatal(err)
		}
		g.Release()
	}
}
