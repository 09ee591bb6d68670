package llmslots

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/slotfile"
)

// A Guard is one held slot. The slot stays held until Release, or until
// the process exits or dies, whichever comes first: the kernel drops the
// lock of a dead process, and the next acquirer reclaims the slot.
//
// A Guard dropped without Release keeps its slot until the process exits:
// the package keeps every held file reachable, since the runtime closes an
// unreachable *os.File, dropping its lock at a random garbage collection.
type Guard struct {
	mu       sync.Mutex
	pool     *Pool
	id       int
	path     string
	file     *os.File    // nil once released
	info     fs.FileInfo // the locked file's identity, checked before deleting
	acquired time.Time
	max      int           // the max the slot was taken with; 0 if unknown
	left     chan struct{} // taken in line: closed once the ticket is gone (waitInLine)
	outer    *Guard        // a nested guard's: the guard whose slot it shares
	passedOn bool          // another process shares the lock (handOn): Release hands the slot over
	th       guardThrottle // what the guard knows of the pool's throttling (throttle.go)
}

// heldGuards holds every unreleased Guard of this process, keyed by slot
// path. It keeps their files reachable (see Guard), and lets an acquirer
// skip slots this process already holds without touching the filesystem.
var heldGuards = struct {
	sync.Mutex
	byPath map[string]*Guard
}{byPath: map[string]*Guard{}}

// newGuard is the one constructor of a Guard: slot id of p, held through f,
// whose identity fi is checked before the file is deleted (nil for a nested
// guard, which never deletes it). Callers set outer and register their own.
func newGuard(p *Pool, id int, f *os.File, fi fs.FileInfo, acquired time.Time) *Guard {
	return &Guard{pool: p, id: id, path: slotfile.SlotPath(p.dir, id), file: f, info: fi, acquired: acquired}
}

func registerGuard(g *Guard) {
	heldGuards.Lock()
	heldGuards.byPath[g.path] = g
	heldGuards.Unlock()
}

func unregisterGuard(g *Guard) {
	heldGuards.Lock()
	if heldGuards.byPath[g.path] == g {
		delete(heldGuards.byPath, g.path)
	}
	heldGuards.Unlock()
}

func heldHere(path string) bool {
	heldGuards.Lock()
	_, ok := heldGuards.byPath[path]
	heldGuards.Unlock()
	return ok
}

// SlotID returns the id of the held slot, 0..max-1; -1 for a nil Guard.
// It keeps its value after Release.
func (g *Guard) SlotID() int {
	if g == nil {
		return -1
	}
	return g.id
}

// Path returns the slot file's path.
func (g *Guard) Path() string {
	if g == nil {
		return ""
	}
	return g.path
}

// AcquiredAt returns when the slot was taken.
func (g *Guard) AcquiredAt() time.Time {
	if g == nil {
		return time.Time{}
	}
	return g.acquired
}

// Held reports whether the guard still holds its slot: no Release yet.
func (g *Guard) Held() bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.file != nil
}

// Release frees the slot: it deletes the slot's name, but only while still
// holding its lock and only if the path still names this guard's file,
// then closes the file, which drops the lock and wakes the first waiter.
// The slot is free when Release returns, even with an error (a failed
// delete or close: the file is closed all the same, its lock gone).
//
// A slot handed to other processes (Command, CommandContext, Inherit,
// PrepareExec) is handed over instead: Release closes this process's
// descriptor and deletes the slot file only if no other process holds its
// lock. The slot stays held while a child (or a descendant that kept the
// descriptor) runs, then is a dead holder's, reclaimed by the next
// acquirer at once. Release never waits for a child.
//
// Release is idempotent and safe in defer: a second call, or a call on a
// nil Guard, returns nil.
func (g *Guard) Release() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.file == nil {
		return nil
	}
	if g.left != nil {
		<-g.left // the ticket goes before the slot
	}
	// Unregister first: the delete below wakes waiters, and a waiter in
	// this process must not skip the slot as still ours.
	unregisterGuard(g)
	var err error
	switch {
	case g.nested():
		err = g.file.Close() // the outer guard keeps the lock
	case g.passedOn:
		err = g.handOver()
	default:
		err = filelock.RemoveAndClose(g.file, g.path, g.info)
	}
	g.file = nil
	g.afterRelease() // raises a throttled pool's limit (throttle.go)
	if l := g.pool.log(); l.Enabled(context.Background(), slog.LevelDebug) {
		l.Debug("llmslots: slot released", "slot", g.id, "dir", g.pool.dir,
			"held", time.Since(g.acquired).Round(time.Microsecond))
	}
	return err
}

// handOver releases a slot whose lock other processes share. Deleting the
// file now would let another make it anew while a child runs under the old
// one: two holders. So it closes its own descriptor, then deletes the file
// only under its lock, if that can be taken (as ForceRelease does).
func (g *Guard) handOver() error {
	err := g.file.Close()
	if _, perr := slotfile.Probe(g.path, slotfile.Remove); err == nil {
		err = perr
	}
	return err
}
