package llmslots

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/watch"
)

// A spare is what makes the uncontended acquire cheap. Taking a slot the
// classic way (create) makes a new file every time: create it exclusively,
// lock it, check it still has a name, write the record; and Release
// deletes it. A process instead keeps, per pool, a spare: a file of its
// own in the pool directory, named .spare-<pid>-<random>, made once and
// kept open and locked while the process lives, its record written in
// advance. To take slot i, the process refreshes the record's time and
// gives the spare a second name: link(spare, slot-i), which fails when
// slot-i exists, as an exclusive create does. Release removes the slot-i
// name and keeps the spare, still locked, for the next acquire: no inode,
// page or descriptor is made or freed per acquisition.
//
// The protocol is unchanged for everyone else, the reference included:
// slot-i is held while its file's lock is taken, and that lock is taken
// from the instant the name appears, so no prober can ever see it
// unlocked (the unlink race cannot happen) and no post-lock check is
// needed. When the process dies the kernel drops the lock, raising
// IN_CLOSE_WRITE in the pool directory, and the next acquirer reclaims
// slot-i as any dead holder's. A dead process's spare names are removed
// by the next process that makes a spare in the pool, and by
// RemoveDeadWaiters (llmslots cleanup): any .spare-* file whose lock is
// free.
//
// Spares are used on Linux only, since only there does the package tell
// a network filesystem (statfs), on which a link may report failure after
// it succeeded; and not where the filesystem refuses hard links. There
// every acquire makes its own file (see spare_other.go).
type spare struct {
	f      *os.File
	path   string
	dir    string
	shared bool        // made for a group's pool (its mode is the group's)
	info   fs.FileInfo // the file's identity, checked before deleting a name
	size   int         // bytes of record now in the file
	broken bool        // unusable: discard it rather than keep it
	// spent is set once another process shares the lock (Inherit,
	// PrepareExec, also through a nested guard): it must not be reused.
	spent atomic.Bool
}

// maxIdleSpares bounds the spares this process keeps between acquires,
// over all pools: each is an open descriptor.
const maxIdleSpares = 8

// spares holds this process's idle spares, most recently used last, and
// the directories it has swept of dead processes' spares.
var spares struct {
	sync.Mutex
	idle  []*spare
	swept map[string]bool
}

// linkFile is os.Link; tests stand in a filesystem that refuses links.
var linkFile = os.Link

// maxSwept bounds the directories remembered as swept, for a process
// that uses many short-lived pools.
const maxSwept = 64

// testNoSpares, set by tests, makes every acquire create its own file.
var testNoSpares bool

// takeSpare returns an idle spare for the pool, or a new one; nil when
// the pool cannot use spares, and the caller then creates the slot file.
func (p *Pool) takeSpare() *spare {
	if testNoSpares || watch.ForcePortable || p.netfs.Load() || p.noLinks.Load() {
		return nil
	}
	spares.Lock()
	for i := len(spares.idle) - 1; i >= 0; i-- {
		if s := spares.idle[i]; s.dir == p.dir && s.shared == p.group.shared {
			spares.idle = append(spares.idle[:i], spares.idle[i+1:]...)
			spares.Unlock()
			return s
		}
	}
	sweep := !spares.swept[p.dir]
	if sweep {
		if spares.swept == nil || len(spares.swept) >= maxSwept {
			spares.swept = make(map[string]bool) // forget: sweeping again is harmless
		}
		spares.swept[p.dir] = true
	}
	spares.Unlock()
	if sweep {
		sweepSpares(p.dir)
	}
	s, err := p.newSpare()
	if err != nil {
		p.log().Debug("llmslots: no spare slot file; creating each slot's file instead", "dir", p.dir, "err", err)
		return nil
	}
	return s
}

// newSpare makes a spare in the pool directory: created exclusively under
// a random name, given the pool's mode, locked, recorded.
func (p *Pool) newSpare() (*spare, error) {
	for range 3 {
		path := filepath.Join(p.dir, fmt.Sprintf("%s%d-%016x", sparePrefix, os.Getpid(), rand.Uint64()))
		// In a group's pool the file is made under a hidden name with its
		// final mode and renamed to path once locked and recorded (see
		// newFile): a sweeper of another member never meets it unlocked
		// or unreadable.
		f, at, err := p.newFile(path, "spare", true)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// Until it is locked, a failure removes the file by name: it is
		// this call's own, made a moment ago.
		abandon := func() {
			os.Remove(at)
			f.Close()
		}
		// A sweeper leaves a young empty file alone, so the lock is ours
		// unless something else is at work; then try another name.
		if ok, err := filelock.TryLock(f); err != nil || !ok {
			abandon()
			if err != nil {
				return nil, err
			}
			continue
		}
		rec := p.newRecord(time.Now(), 0).marshal()
		if p.group.shared {
			// The name is random: no other process chooses it, so a plain
			// rename cannot replace another's file.
			if _, err := f.Write(rec); err != nil {
				abandon()
				return nil, err
			}
			if err := os.Rename(at, path); err != nil {
				abandon()
				return nil, err
			}
			at = path // what abandon removes from now on
		}
		fi, err := f.Stat()
		if err != nil {
			abandon()
			return nil, err
		}
		s := &spare{f: f, path: path, dir: p.dir, shared: p.group.shared, info: fi}
		// A record at once, though each look at the slots writes it anew:
		// a locked spare is never empty, so a sweeper never mistakes a
		// dead process's for one not yet locked.
		if !p.group.shared {
			if _, err := f.Write(rec); err != nil {
				s.discard()
				return nil, err
			}
		}
		s.size = len(rec)
		return s, nil
	}
	return nil, errors.New("could not make a spare file")
}

// record writes rec into s, in place: once per look at the slots, before
// publish tries them. A failure leaves s broken.
func (s *spare) record(rec []byte) {
	_, err := s.f.WriteAt(rec, 0)
	if err == nil && len(rec) < s.size {
		err = s.f.Truncate(int64(len(rec)))
	}
	if err != nil {
		s.broken = true
		return
	}
	s.size = len(rec)
}

// publish gives s the name path: on success the slot is held. An error
// matching fs.ErrExist means the slot file exists; any other error leaves
// s broken.
func (s *spare) publish(path string) error {
	err := linkFile(s.path, path)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		s.broken = true
	}
	return err
}

// linksRefused reports an error from link that means the filesystem (or
// its mount, or a security policy) does not allow hard links here. Where
// the directory itself refuses writes, create reports that.
func linksRefused(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EOPNOTSUPP) ||
		errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EMLINK)
}

// markSpent records that another process shares s's lock; nil is a no-op
// (a slot file made the classic way).
func (s *spare) markSpent() {
	if s != nil {
		s.spent.Store(true)
	}
}

// release removes the slot name path, if it still names s, and keeps s
// for the next acquire. A spare whose lock another process shares (spent:
// handed to a child or kept across exec) is discarded instead, as is one
// that may still have the slot's name (it could not be removed, or not
// even seen: the directory renamed or unreadable for a moment): closing it
// drops the lock, so the slot is then reclaimable as a dead holder's, as
// with a classic file.
func (s *spare) release(path string) error {
	var rmErr error
	removed := false
	if cur, err := os.Lstat(path); err == nil && os.SameFile(s.info, cur) {
		rmErr = os.Remove(path)
		removed = rmErr == nil
		if errors.Is(rmErr, fs.ErrNotExist) {
			rmErr = nil
		}
	}
	if rmErr != nil || s.spent.Load() || !removed && !s.alone() {
		return errors.Join(rmErr, s.discard())
	}
	putSpare(s)
	return nil
}

// handOver closes s, whose lock other processes share, and removes its
// own name if nobody holds its lock any more; a child that still holds it
// keeps both names until it exits (the next sweep removes the spare's).
func (s *spare) handOver() error {
	err := s.f.Close()
	probe(s.path, probeRemove)
	return err
}

// alone reports whether s has exactly one name, its own: no slot's.
func (s *spare) alone() bool {
	fi, err := s.f.Stat()
	if err != nil {
		return false
	}
	n, ok := filelock.Links(fi)
	return ok && n == 1 && filelock.StillAt(s.path, s.info)
}

// putSpare keeps s for the next acquire; the oldest idle spare goes when
// there are too many.
func putSpare(s *spare) {
	if s.broken || s.spent.Load() {
		s.discard()
		return
	}
	spares.Lock()
	spares.idle = append(spares.idle, s)
	var old *spare
	if len(spares.idle) > maxIdleSpares {
		old = spares.idle[0]
		spares.idle = spares.idle[1:]
	}
	spares.Unlock()
	if old != nil {
		old.discard()
	}
}

// discard removes s's own name, while still holding its lock, and closes
// it.
func (s *spare) discard() error {
	if filelock.StillAt(s.path, s.info) {
		os.Remove(s.path)
	}
	return s.f.Close()
}

// sweepSpares removes the spares of processes that are gone from dir: any
// .spare-* file whose lock is free, deleted under that lock. A young empty
// one is left to its creator, which may not have locked it yet (see
// probe), unless the pid in its name is gone. It returns how many it
// removed.
func sweepSpares(dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), sparePrefix) || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		res, err := probeNamed(path, probeRemove)
		if err == nil && res.removed {
			n++
		}
	}
	return n
}
