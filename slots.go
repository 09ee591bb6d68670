// Package llmslots limits how many processes of one user, across the whole
// host, do something at once: at most max holders of a pool's slots, and
// a holder that crashes never takes its slot with it.
//
// It was written for agent sessions that each spawn `codex exec` or
// `claude -p` against one account's rate limit, and serves any scarce
// resource shared by cooperating processes:
//
//	g, err := llmslots.Acquire(4, 30*time.Second)
//	if err != nil {
//		return err
//	}
//	defer g.Release()
//	// spawn codex / claude here
//
// # Protocol
//
// A pool is a directory holding slot-0.lock .. slot-(max-1).lock. To take
// slot i a process creates its file exclusively, or opens the existing one,
// and takes a non-blocking exclusive flock on it. The lock, never the
// file's existence, decides whether the slot is held: the kernel drops the
// lock of a process that dies by any means, so a file whose lock can be
// taken belonged to a dead holder and is reclaimed on the spot. After
// locking, the holder checks that the file it locked is still the one at
// the path (see the unlink race in Pool.Acquire), then writes its record:
// "pid=<pid>" and key=value lines naming host, time, process start time,
// command line and label. Release deletes the file while still holding its
// lock, then closes it.
package llmslots

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
)

// Acquire takes a free slot of the pool's first max, waiting up to wait for
// one. With wait 0 it tries each slot once and returns. On success the
// caller must call Release on the returned Guard (defer g.Release()).
//
// When no slot frees within wait it returns an error matching ErrBusy that
// names max, the wait and the holders' pids. max outside 1..MaxSlots and a
// negative wait give an error matching ErrInvalid. A directory that is not
// safe to use gives an error matching ErrUnsafeDir. On any error no slot is
// held.
func (p *Pool) Acquire(max int, wait time.Duration) (*Guard, error) {
	if err := p.usable(); err != nil {
		return nil, err
	}
	if wait < 0 {
		return nil, invalidf("wait must be >= 0, got %v", wait)
	}
	return p.acquire(context.Background(), max, time.Now().Add(wait), wait)
}

// AcquireContext takes a free slot of the pool's first max, waiting until
// one frees or ctx is done. When ctx is done first it returns an error that
// wraps ctx.Err() (errors.Is(err, context.DeadlineExceeded) and so on) and
// holds no slot. If ctx is already done, AcquireContext still tries each
// slot once and may succeed.
func (p *Pool) AcquireContext(ctx context.Context, max int) (*Guard, error) {
	if err := p.usable(); err != nil {
		return nil, err
	}
	if ctx == nil {
		return nil, invalidf("AcquireContext needs a non-nil context; use context.Background()")
	}
	return p.acquire(ctx, max, time.Time{}, 0)
}

// acquire is Acquire and AcquireContext: deadline zero means no deadline
// but ctx's; wait is only for the busy message.
func (p *Pool) acquire(ctx context.Context, max int, deadline time.Time, wait time.Duration) (*Guard, error) {
	if err := checkMax(max); err != nil {
		return nil, err
	}
	if g, err := p.reenter(ctx); g != nil || err != nil {
		return g, err // a slot this caller already holds (nested.go)
	}
	if err := p.prepare(); err != nil {
		return nil, err
	}
	g, err := waitForSlot(ctx, deadline, func() (*Guard, error) { return p.tryAcquire(max) })
	switch {
	case g != nil:
		return g, nil
	case err == nil:
		return nil, p.busyError(max, wait)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return nil, fmt.Errorf("llmslots: gave up waiting for a slot of %s (max=%d): %w", p.dir, max, err)
	}
	return nil, err
}

// tryAcquire makes one pass over the slots, lowest id first, and returns
// the first it takes; nil, nil when all are held.
func (p *Pool) tryAcquire(max int) (*Guard, error) {
	for id := 0; id < max; id++ {
		path := slotPath(p.dir, id)
		if heldHere(path) {
			continue // ours already; no need to ask the filesystem
		}
		g, err := p.take(id, path)
		if g != nil || err != nil {
			return g, err
		}
	}
	return nil, nil
}

// testHookBeforeLock, when set by a test, runs between opening a slot
// file and locking it: the window of the unlink race.
var testHookBeforeLock func(path string)

// take tries to take slot id: nil, nil when another process holds it.
//
// The unlink race: process B opens slot-0.lock; its holder A deletes and
// closes it; B's lock now succeeds on a file with no name, while C creates
// a new slot-0.lock and locks that. B and C would both hold slot 0. So after
// locking, take checks that the locked file still has a name and, for a
// file it did not create, that the name still leads to it; if not, it
// starts over on whatever is at the path now.
func (p *Pool) take(id int, path string) (*Guard, error) {
	// A few rounds suffice: each restart means some other process made
	// progress on this slot; if it keeps changing, report it busy.
	for range 4 {
		f, created, err := p.open(path)
		if err != nil {
			return nil, err
		}
		if f == nil {
			continue // vanished between create and open: look again
		}
		if testHookBeforeLock != nil {
			testHookBeforeLock(path)
		}
		ok, err := tryLock(f)
		if err != nil || !ok {
			f.Close()
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("llmslots: %w", err)
		}
		if !fi.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("llmslots: slot file %s is not a regular file (%v); remove it", path, fi.Mode().Type())
		}
		if !linked(fi) || !created && !stillAt(path, fi) {
			f.Close() // we locked a file that is no longer the slot
			continue
		}
		return p.hold(id, path, f, fi, created), nil
	}
	return nil, nil
}

// open creates path exclusively, or opens the existing file. f is nil,
// with no error, when the file vanished between the two attempts.
func (p *Pool) open(path string) (f *os.File, created bool, err error) {
	f, err = openSlotFile(path, true)
	if err == nil {
		return f, true, nil
	}
	if errors.Is(err, fs.ErrExist) {
		f, err = openSlotFile(path, false)
		if err == nil {
			return f, false, nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
	}
	if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, false, fmt.Errorf("llmslots: slot file %s is a symbolic link, which llmslots never follows; remove it", path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		// The directory itself is gone (removed while in use): make it
		// again on the next attempt.
		p.ready.Store(false)
		if perr := p.prepare(); perr != nil {
			return nil, false, perr
		}
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("llmslots: cannot open slot file: %w", err)
}

// stillAt reports whether path names the file fi describes.
func stillAt(path string, fi fs.FileInfo) bool {
	cur, err := os.Lstat(path)
	return err == nil && os.SameFile(fi, cur)
}

// hold writes this process's record into the locked file f and returns its
// Guard. A failed write (a full disk) leaves the slot held, since the lock
// and not the record is what holds it; it is logged and status shows the
// holder as unknown.
func (p *Pool) hold(id int, path string, f *os.File, fi fs.FileInfo, created bool) *Guard {
	now := time.Now()
	rec := self()
	rec.Since = now
	rec.Label = p.label
	data := rec.marshal()
	var err error
	if created {
		_, err = f.Write(data)
	} else {
		// A reclaimed file: its holder died; say whose slot this was.
		if old, rerr := readRecordFrom(f); rerr == nil {
			p.log().Debug("llmslots: reclaimed slot of a dead holder", "slot", id, "dir", p.dir,
				"dead_pid", old.PID, "since", old.Since)
		}
		if err = f.Truncate(0); err == nil {
			_, err = f.WriteAt(data, 0)
		}
	}
	if err != nil {
		p.log().Warn("llmslots: slot held, but its record was not written", "slot", id, "path", path, "err", err)
	}
	g := &Guard{pool: p, id: id, path: path, file: f, info: fi, acquired: now}
	registerGuard(g)
	return g
}

// busyError builds the ErrBusy error, naming who holds the slots.
func (p *Pool) busyError(max int, wait time.Duration) error {
	holders := "unknown"
	if st, err := p.ReadStatus(max); err == nil && len(st.PIDs) > 0 {
		pids := make([]string, len(st.PIDs))
		for i, pid := range st.PIDs {
			pids[i] = strconv.Itoa(pid)
		}
		holders = strings.Join(pids, ", ")
	}
	return &wrapped{
		msg: fmt.Sprintf("llmslots: no free slot in %s within %v (max=%d); held by pids %s",
			p.dir, wait, max, holders),
		sentinel: ErrBusy,
	}
}
