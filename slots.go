package llmslots

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/llmslots/llmslots/internal/clock"
	"github.com/llmslots/llmslots/internal/line"
	"github.com/llmslots/llmslots/internal/slotfile"
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
	dir      string
	label    string
	progress func(Progress) // told how a waiting acquire fares (WithProgress)
	logger   *slog.Logger
	group    group // who shares the pool: its owner alone, or a Unix group

	ready          atomic.Bool // the directory is made and checked: no stat at every acquire
	unusableLogged atomic.Bool // an unusable slot was logged at Warn
	maxChecked     atomic.Bool // the first wait looked for other max values (warnOtherMax)
	throttleBad    atomic.Bool // an unusable throttle state was logged, until a usable one is read
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
// most 256 bytes of UTF-8 without control characters (C0, DEL, C1, and the
// bidirectional ones such as U+202E, which would reorder what status shows).
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
	if root, err := filepath.EvalSymlinks(dir); err == nil && filepath.Dir(root) == root || filepath.Dir(filepath.Clean(dir)) == filepath.Clean(dir) {
		return nil, invalidf("pool directory must not be a filesystem root (where its files would lie among everything else), got %q", dir)
	}
	g, err := groupFromEnv()
	if err != nil {
		return nil, err
	}
	return (&Pool{dir: filepath.Clean(dir), group: g}).apply(opts)
}

// With returns a pool on p's directory with p's options and then opts: a
// cheap way to give each job its own label and progress callback, sharing
// the slots, the line and the limit.
func (p *Pool) With(opts ...Option) (*Pool, error) {
	if err := p.usable(); err != nil {
		return nil, err
	}
	return (&Pool{dir: p.dir, label: p.label, progress: p.progress, logger: p.logger, group: p.group}).apply(opts)
}

func (p *Pool) apply(opts []Option) (*Pool, error) {
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
	return slotfile.SlotPath(p.Dir(), id)
}

// usable rejects a nil or zero Pool with an error instead of a panic.
func (p *Pool) usable() error {
	if p == nil || p.dir == "" {
		return invalidf("the Pool is nil or zero; make one with NewPool, NamedPool or DefaultPool")
	}
	return nil
}

// prepare creates and checks the directory and its queue directory, once
// per pool (and again if the directory is removed).
func (p *Pool) prepare() error {
	if p.ready.Load() {
		return nil
	}
	err := p.group.maker().Prepare(p.dir, EnvDir)
	p.ready.Store(err == nil)
	return err
}

// remake makes the pool's directory and queue again, removed while in use.
func (p *Pool) remake() error {
	p.ready.Store(false)
	return p.prepare()
}

// line is the pool's queue of waiters.
func (p *Pool) line() line.Line {
	return line.Line{Dir: filepath.Join(p.dir, slotfile.QueueDir), Maker: p.group.maker()}
}

// Acquire takes a free slot of the pool's first max, waiting up to wait for
// one. Waiters are served in the order they arrived, across processes: a
// caller that finds others waiting joins the back of the line, even if a
// slot has just freed. With wait 0 it makes one attempt (which, with others
// waiting, fails at once). On success the caller must call Release on the
// returned Guard (defer g.Release()).
//
// When no slot frees within wait it returns an error matching ErrBusy that
// names max, the wait and the holders' pids. max outside 1..MaxSlots and a
// negative wait give an error matching ErrInvalid, a directory not safe to
// use one matching ErrUnsafeDir. On any error no slot is held.
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
// holds no slot. If ctx is already done, AcquireContext still makes one
// attempt, as Acquire with wait 0 does, and may succeed.
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
	called := time.Now()
	if err := checkMax(max); err != nil {
		return nil, err
	}
	if g, err := p.reenter(ctx); g != nil || err != nil {
		return g, err // a slot this caller already holds (handon.go)
	}
	if err := p.prepare(); err != nil {
		return nil, err
	}
	var g *Guard
	var err error
	// The uncontended path: nobody waits, so take a slot at once, then
	// recheck it behind the throttle gate (throttle.go) for a report written
	// before the take. With waiters, even a free slot is theirs: join the line.
	if p.line().Empty() {
		if g, _, err = p.tryAcquire(max); g != nil {
			g = p.recheck(g, max)
		}
	}
	if g == nil && err == nil && (deadline.IsZero() || time.Now().Before(deadline)) && ctx.Err() == nil {
		arrived := clock.Monotonic() - int64(time.Since(called))
		g, err = p.waitInLine(ctx, max, deadline, arrived)
	}
	waited := time.Since(called).Round(time.Millisecond)
	switch {
	case g != nil:
		return g, nil
	case errors.Is(err, errNoUsableSlot):
		return nil, p.busyError(max, waited, nil)
	case err == nil && ctx.Err() == nil:
		return nil, p.busyError(max, wait, nil)
	case ctx.Err() != nil && (err == nil || errors.Is(err, ctx.Err())):
		return nil, p.busyError(max, waited, ctx.Err())
	}
	return nil, err
}

// waitInLine takes a ticket and waits for its turn and a slot (see
// internal/line). Without a slot, the ticket is gone when it returns; with
// one, it goes just after (Release waits for it): leaving wakes the waiter
// behind, which on a busy machine could otherwise return first.
func (p *Pool) waitInLine(ctx context.Context, max int, deadline time.Time, arrived int64) (*Guard, error) {
	started := time.Now()
	rec := p.newRecord(started, max).Marshal()
	t, err := p.line().Join(arrived, rec)
	if errors.Is(err, fs.ErrNotExist) { // the queue, or the pool, was removed
		if err = p.remake(); err == nil {
			t, err = p.line().Join(arrived, rec)
		}
	}
	if err != nil {
		return nil, err
	}
	stop := p.watchProgress(max, started, t.Name())
	p.warnOtherMax(max)
	a := &attempt{p: p, max: max}
	_, err = t.Wait(ctx, deadline, a)
	stop()
	if a.g == nil {
		t.Leave()
		return nil, err
	}
	left := make(chan struct{})
	a.g.left = left
	go func() {
		t.Leave()
		close(left)
	}()
	return a.g, err
}

// An attempt is one waiting acquire's view of the slots, for line.Wait.
type attempt struct {
	p     *Pool
	max   int
	g     *Guard // the slot taken, once taken
	paths []string
}

func (a *attempt) Try() (ok bool, retry time.Time, err error) {
	a.g, retry, err = a.p.tryAcquireGated(a.max) // throttle.go
	return a.g != nil, retry, err
}

func (a *attempt) Paths() []string {
	for id := len(a.paths); id < a.max; id++ {
		a.paths = append(a.paths, slotfile.SlotPath(a.p.dir, id))
	}
	return a.paths
}

// Free reports whether some slot below max looks free to the waiter second
// in line: no file, or a dead holder's (removed under its lock by the look).
func (a *attempt) Free() bool {
	for _, path := range a.Paths() {
		if res, err := slotfile.Probe(path, slotfile.Remove); err == nil && (res.Removed || res.State == slotfile.Free) {
			return true
		}
	}
	return false
}

// tryAcquire makes one attempt at the slots (slotfile.Maker.Pick); nil, nil
// when all are held. soon reports a slot held only by a young empty file,
// reclaimable once old. A slot holding what llmslots never makes is skipped
// (the rest of the pool works on), logged and named in the busy error.
func (p *Pool) tryAcquire(max int) (g *Guard, soon bool, err error) {
	now := time.Now()
	rec := p.newRecord(now, max).Marshal()
	mine := func(id int) bool { return heldHere(slotfile.SlotPath(p.dir, id)) }
	pick, err := p.group.maker().Pick(p.dir, max, rec, mine)
	if errors.Is(err, fs.ErrNotExist) {
		// The pool directory was removed while in use: make it again and
		// look afresh. The lock on each slot still decides.
		if err := p.remake(); err != nil {
			return nil, false, err
		}
		pick, err = p.group.maker().Pick(p.dir, max, rec, mine)
	}
	if err != nil {
		return nil, false, fmt.Errorf("llmslots: cannot create slot file: %w", err)
	}
	for i, id := range pick.Unusable {
		// Once per pool at Warn: a waiter meets it at every look.
		level := slog.LevelDebug
		if !p.unusableLogged.Swap(true) {
			level = slog.LevelWarn
		}
		p.log().Log(context.Background(), level, "llmslots: slot unusable", "slot", id,
			"err", fmt.Sprintf("llmslots: slot file %s is %s", slotfile.SlotPath(p.dir, id), pick.Why[i]))
	}
	if pick.Taken == nil {
		if len(pick.Unusable) == max {
			return nil, false, errNoUsableSlot
		}
		return nil, pick.Soon, nil
	}
	if pick.Reclaimed.PID > 0 {
		p.log().Debug("llmslots: reclaimed slot of a dead holder", "slot", pick.ID, "dir", p.dir,
			"dead_pid", pick.Reclaimed.PID, "since", pick.Reclaimed.Since)
	}
	if err := pick.Taken.RecordErr; err != nil {
		p.log().Warn("llmslots: slot held, but its record was not written", "slot", pick.ID, "dir", p.dir, "err", err)
	}
	g = newGuard(p, pick.ID, pick.Taken.File, pick.Taken.Info, now)
	g.max = max
	registerGuard(g)
	return g, false, nil
}

// errNoUsableSlot: every slot below max holds what llmslots never makes, so
// nothing can free one; the acquire fails at once, the busy error naming them.
var errNoUsableSlot = errors.New("no usable slot")

// newRecord is this process's record for a slot or ticket taken at since.
func (p *Pool) newRecord(since time.Time, max int) slotfile.Record {
	rec := slotfile.Self()
	rec.Since, rec.Label, rec.Max = since, p.label, max
	return rec
}
