package llmslots

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/watch"
)

// A Pool is a set of slots, slot-0.lock .. slot-(max-1).lock, in one
// directory. Every process that uses the same directory and the same max
// shares one limit. The package-level functions use the default pool
// (see Dir); named pools (see NamedPool) limit separately, so that a
// "codex" pool of 4 and a "claude" pool of 2 do not compete.
//
// A Pool is safe for concurrent use. Make one with NewPool, NamedPool or
// DefaultPool; the zero Pool is not usable.
type Pool struct {
	dir   string
	label string
	// progress, if set, is told how a waiting acquire fares (WithProgress).
	progress func(Progress)
	logger   *slog.Logger
	group    group // who shares the pool: its owner alone, or a Unix group
	// ready is set once the directory has been created and checked, so
	// the acquire path does not stat it every time.
	ready atomic.Bool
	// waiters is .queue/waiters, kept open for waitersPresent.
	waiters atomic.Pointer[os.File]
	// idleMarks keeps waiters' descriptors of it for the next (marks.go).
	idleMarks idleMarks
	// netfs is set for a network filesystem: no inotify events from
	// other hosts, and deleted files that keep a name.
	netfs atomic.Bool
	// noLinks is set once a hard link failed here: no spares (see
	// spare_linux.go).
	noLinks atomic.Bool
	// resolved is the pool directory with symbolic links resolved, set by
	// prepare: inotify watches a directory, never a link to one.
	resolved atomic.Pointer[string]
	// unusableLogged is set once an unusable slot has been logged at Warn.
	unusableLogged atomic.Bool
	// pollLogged is set once a waiter has logged that it polls because
	// inotify failed.
	pollLogged atomic.Bool
	// maxChecked is set once this process has looked, at its first wait,
	// for holders and waiters that use another max (see warnOtherMax).
	maxChecked atomic.Bool
	// throttleBad is set once an unusable throttle state file was logged
	// (throttle.go), until a usable one is read.
	throttleBad atomic.Bool
	// slotmap is .queue/slotmap, opened at the first acquire with a max
	// above mapFrom (slotmap.go); slotmapBad is set when it cannot be used.
	slotmap    atomic.Pointer[os.File]
	slotmapBad atomic.Bool
	slotmapMu  sync.Mutex
}

// An Option configures a Pool.
type Option func(*Pool) error

// WithLogger makes the pool log to l instead of the package logger (see
// SetLogger). Reclaiming a dead holder's slot is logged at Debug level,
// failures that do not stop an operation at Warn.
func WithLogger(l *slog.Logger) Option {
	return func(p *Pool) error {
		p.logger = l
		return nil
	}
}

// WithLabel records label in every slot the pool takes, for status
// readers: what the holder is doing, in the caller's words. A label is at
// most 256 bytes of UTF-8 without control characters (C0, DEL, C1, and
// the bidirectional controls such as U+202E, which would reorder what
// status shows).
func WithLabel(label string) Option {
	return func(p *Pool) error {
		if err := checkLabel(label); err != nil {
			return err
		}
		p.label = label
		return nil
	}
}

// NewPool returns the pool whose slots live in dir, an absolute path. The
// directory is created (mode 0700) when a slot is first taken.
func NewPool(dir string, opts ...Option) (*Pool, error) {
	if dir == "" {
		return nil, invalidf("pool directory must not be empty")
	}
	if !filepath.IsAbs(dir) {
		return nil, invalidf("pool directory must be an absolute path, got %q", dir)
	}
	g, err := groupFromEnv()
	if err != nil {
		return nil, err
	}
	p := &Pool{dir: filepath.Clean(dir), group: g}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// NamedPool returns the pool called name: the subdirectory name of the
// default pool's directory (Dir). A name is 1-64 characters of [a-z0-9._-],
// does not start with a dot and is not a slot file name; anything else is
// an error matching ErrInvalid.
func NamedPool(name string, opts ...Option) (*Pool, error) {
	if err := checkPoolName(name); err != nil {
		return nil, err
	}
	root, err := defaultDir()
	if err != nil {
		return nil, err
	}
	return NewPool(filepath.Join(root, name), opts...)
}

// DefaultPool returns the default pool (the one in Dir) with options, for
// callers who want a label or a logger there.
func DefaultPool(opts ...Option) (*Pool, error) {
	root, err := defaultDir()
	if err != nil {
		return nil, err
	}
	return NewPool(root, opts...)
}

// Dir returns the pool's directory.
func (p *Pool) Dir() string {
	if p == nil {
		return ""
	}
	return p.dir
}

// SlotPath returns the path of slot id's file in the pool.
func (p *Pool) SlotPath(id int) string {
	return slotPath(p.Dir(), id)
}

// usable rejects a nil or zero Pool with an error instead of a panic.
func (p *Pool) usable() error {
	if p == nil || p.dir == "" {
		return invalidf("the Pool is nil or zero; make one with NewPool, NamedPool or DefaultPool")
	}
	return nil
}

// prepare creates and checks the directory, its queue directory and the
// waiters file, once per pool (and again if the directory is removed).
func (p *Pool) prepare() error {
	if p.ready.Load() {
		return nil
	}
	if err := prepareDir(p.dir, p.group); err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(p.dir); err == nil {
		p.resolved.Store(&real)
	}
	p.netfs.Store(watch.NetworkFS(p.dir))
	qdir := queueDir(p.dir)
	qfi, err := os.Lstat(qdir)
	if errors.Is(err, fs.ErrNotExist) {
		if p.group.shared {
			err = makeGroupDir(qdir, p.group.gid, false)
		} else {
			err = makeDir(qdir, p.group)
		}
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("llmslots: cannot create the queue directory: %w", err)
		}
		qfi, err = os.Lstat(qdir)
	}
	// Tickets are made by path under .queue: a symbolic link there would
	// be followed, and anything but a directory breaks every wait.
	if err == nil && !qfi.IsDir() {
		return notMadeByUs(qdir, qfi)
	}
	waiters := filepath.Join(qdir, waitersFileName)
	f, err := p.openWaiters(waiters)
	if err != nil {
		if fi, lerr := os.Lstat(waiters); lerr == nil && !fi.Mode().IsRegular() {
			return notMadeByUs(waiters, fi)
		}
		return fmt.Errorf("llmslots: cannot open the queue: %w", err)
	}
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		f.Close()
		return notMadeByUs(waiters, fi)
	}
	if old := p.waiters.Swap(f); old != nil {
		old.Close()
	}
	p.dropSlotMap() // made again with the queue, if it was removed
	p.ready.Store(true)
	return nil
}

// notMadeByUs reports a queue path that holds what llmslots never makes.
func notMadeByUs(path string, fi fs.FileInfo) error {
	return &wrapped{
		msg: fmt.Sprintf("llmslots: %s is %s, which llmslots never makes; remove it (rm -r %s) and the queue is made again at the next acquire",
			path, describe(fi), path),
		sentinel: ErrUnsafeDir,
	}
}

// watchDir is the directory to watch for slot events: the pool directory
// itself, or where it leads if it is reached through a symbolic link.
func (p *Pool) watchDir() string {
	if real := p.resolved.Load(); real != nil {
		return *real
	}
	return p.dir
}

// waitersPresent reports whether any process waits in the pool's queue.
// Every waiter marks the waiters file (see markWaiting); the kernel drops
// a dead waiter's mark, so a crash never leaves the pool looking busy.
func (p *Pool) waitersPresent() bool {
	f := p.waiters.Load()
	if f == nil {
		return false
	}
	if waiting, sure := filelock.AnyWaiting(f); sure {
		return waiting
	}
	return hasTickets(queueDir(p.dir))
}

func (p *Pool) log() *slog.Logger {
	if p.logger != nil {
		return p.logger
	}
	return packageLogger()
}

var pkgLogger atomic.Pointer[slog.Logger]

var discard = slog.New(slog.DiscardHandler)

// SetLogger sets the logger of the package-level functions and of pools
// made without WithLogger. The package is silent until it is called; nil
// silences it again.
func SetLogger(l *slog.Logger) {
	pkgLogger.Store(l)
}

func packageLogger() *slog.Logger {
	if l := pkgLogger.Load(); l != nil {
		return l
	}
	return discard
}

// defaultPools keeps one Pool per default directory, so the package-level
// functions check a directory once, yet follow LLMSLOTS_DIR when it changes.
var defaultPools struct {
	sync.Mutex
	byDir map[string]*Pool
}

func defaultPool() (*Pool, error) {
	dir, err := defaultDir()
	if err != nil {
		return nil, err
	}
	defaultPools.Lock()
	defer defaultPools.Unlock()
	if p := defaultPools.byDir[dir]; p != nil {
		return p, nil
	}
	p, err := NewPool(dir)
	if err != nil {
		return nil, err
	}
	if defaultPools.byDir == nil {
		defaultPools.byDir = make(map[string]*Pool)
	}
	defaultPools.byDir[dir] = p
	return p, nil
}

// The package-level functions: the default pool's operations.

// Acquire takes a slot of the default pool; see Pool.Acquire.
func Acquire(max int, wait time.Duration) (*Guard, error) {
	p, err := defaultPool()
	if err != nil {
		return nil, err
	}
	return p.Acquire(max, wait)
}

// AcquireContext takes a slot of the default pool; see Pool.AcquireContext.
func AcquireContext(ctx context.Context, max int) (*Guard, error) {
	p, err := defaultPool()
	if err != nil {
		return nil, err
	}
	return p.AcquireContext(ctx, max)
}

// ReadStatus reports the default pool's slots; see Pool.ReadStatus.
func ReadStatus(max int) (Status, error) {
	p, err := defaultPool()
	if err != nil {
		return Status{}, err
	}
	return p.ReadStatus(max)
}

// FindStale lists the default pool's stale slots; see Pool.FindStale.
func FindStale(max int) ([]int, error) {
	p, err := defaultPool()
	if err != nil {
		return nil, err
	}
	return p.FindStale(max)
}

// ForceRelease frees a stale slot of the default pool; see
// Pool.ForceRelease.
func ForceRelease(slotID int) error {
	p, err := defaultPool()
	if err != nil {
		return err
	}
	return p.ForceRelease(slotID)
}
