package llmslots

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/llmslots/llmslots/internal/fdpass"
	"github.com/llmslots/llmslots/internal/slotfile"
)

// handedOn lists what a child of this process should inherit with g's
// slot: g first, then every slot this process inherited from another pool,
// so that the child keeps the outer ones too. fd(i) numbers the i-th file.
func (g *Guard) handedOn(fd func(i int, f *os.File) (int, error)) ([]*os.File, []fdpass.Slot, error) {
	files := []*os.File{g.file}
	n, err := fd(0, g.file)
	if err != nil {
		return nil, nil, err
	}
	ins := []fdpass.Slot{{FD: n, ID: g.id, Dir: g.pool.dir}}
	for _, a := range inheritedGuards() {
		if a.pool.dir == g.pool.dir {
			continue // g is this slot, or nested in it
		}
		n, err := fd(len(files), a.file)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, a.file)
		ins = append(ins, fdpass.Slot{FD: n, ID: a.id, Dir: a.pool.dir})
	}
	return files, ins, nil
}

// Inherit hands the held slot to cmd, a child process not yet started, so
// that the slot stays held while the child lives, even if this process dies
// first; Command and CommandContext call it. The locked slot file is added
// to cmd.ExtraFiles, and LLMSLOTS_INHERITED in cmd.Env (the current
// environment, if cmd.Env is nil) tells the child which pool, slot and
// descriptor it holds (see "Handing a slot on" in the package docs).
// Replace neither afterwards: append to them.
//
// The lock belongs to the open file, which parent and child then share:
// the slot is free only once both have closed it (exited), and Release in
// the parent hands it over (see Release). The child's descendants inherit
// the descriptor unless they close it: the slot follows the whole process
// tree. Slots this process itself inherited from other pools go with it.
//
// Inherit fails with an error matching ErrInvalid for a nil cmd, a started
// cmd or a released Guard, and with errors.ErrUnsupported where a child
// cannot keep a lock (Windows: it belongs to the process that took it).
func (g *Guard) Inherit(cmd *exec.Cmd) error {
	if cmd == nil {
		return invalidf("Inherit needs a non-nil *exec.Cmd")
	}
	if cmd.Process != nil {
		return invalidf("Inherit needs a command that has not been started")
	}
	if g == nil {
		return invalidf("Inherit called on a nil Guard")
	}
	return g.handOn("inherit", "hand on", func() error {
		base := len(cmd.ExtraFiles)
		files, ins, err := g.handedOn(func(i int, _ *os.File) (int, error) { return 3 + base + i, nil })
		if err != nil {
			return err
		}
		if !fdpass.Supported {
			return fmt.Errorf("llmslots: handing a slot to a child process is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
		}
		cmp.Or(g.outer, g).passedOn = true // the child will share the lock
		// exec.Cmd dups each of ExtraFiles to 3, 4, ... in the child, without
		// close-on-exec: the numbers handedOn was given.
		cmd.ExtraFiles = append(cmd.ExtraFiles, files...)
		cmd.Env = fdpass.WithEnv(cmd.Env, ins)
		return nil
	})
}

// PrepareExec readies the held slot to pass to the program that replaces
// this process through syscall.Exec (as `flock -F` does): it clears
// close-on-exec on the locked file's descriptor, rewrites the slot's record
// so that its command is argv (the pid stays: exec keeps it), and returns
// env (the current environment, if nil) with LLMSLOTS_INHERITED naming the
// descriptor, for syscall.Exec. The slot then lives exactly as long as the
// new program and its descendants that keep the descriptor.
//
// If the exec fails, Release frees the slot as usual. PrepareExec fails
// with an error matching ErrInvalid on a released Guard, and with
// errors.ErrUnsupported where no exec keeps descriptors (Windows).
func (g *Guard) PrepareExec(argv, env []string) ([]string, error) {
	if g == nil {
		return nil, invalidf("PrepareExec called on a nil Guard")
	}
	err := g.handOn("keep across exec", "keep", func() error {
		if g.left != nil {
			<-g.left // out of line before the process is replaced
		}
		cmp.Or(g.outer, g).passedOn = true // the program after exec will hold the lock
		_, ins, err := g.handedOn(func(_ int, f *os.File) (int, error) { return fdpass.KeepOnExec(f) })
		if errors.Is(err, errors.ErrUnsupported) {
			return fmt.Errorf("llmslots: keeping a slot across exec is not supported on %s: %w", runtime.GOOS, err)
		}
		if err != nil {
			return fmt.Errorf("llmslots: cannot keep the slot file open across exec: %w", err)
		}
		// A nested guard's record is its outer holder's, which outlives it.
		if !g.nested() {
			rec := g.pool.newRecord(g.acquired, g.max)
			rec.Command = slotfile.CleanValue(strings.Join(argv, " "), slotfile.MaxCommandLen)
			err := g.file.Truncate(0)
			if err == nil {
				_, err = g.file.WriteAt(rec.Marshal(), 0)
			}
			if err != nil {
				g.pool.log().Warn("llmslots: slot kept across exec, but its record was not rewritten", "slot", g.id, "path", g.path, "err", err)
			}
		}
		env = fdpass.WithEnv(env, ins)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return env, nil
}

// handOn runs do with g locked, and for a nested guard its outer guard
// too (whose file holds the slot only while it is held), once g is found
// to hold a slot it can hand on; what and verb word the refusals. do marks
// the guard owning the slot file passedOn (see Release).
func (g *Guard) handOn(what, verb string, do func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.file == nil {
		return invalidf("the guard of slot %d (%s) is released or zero; there is nothing to %s", g.id, g.path, what)
	}
	if strings.Contains(g.pool.dir, "\n") {
		return invalidf("cannot %s a slot of %q: a directory with a newline cannot be named in %s", verb, g.pool.dir, fdpass.EnvVar)
	}
	if outer := g.outer; outer != nil {
		outer.mu.Lock()
		defer outer.mu.Unlock()
		if outer.file == nil {
			return invalidf("the slot %d (%s) this nested guard shares was released by its outer guard; there is nothing to hand on", g.id, g.path)
		}
	}
	return do()
}

// inheritedGuards returns the slots this process was started with (see
// fdpass.EnvVar), one per pool, checked once (those failing are left out),
// keeping their files reachable; never released here, but by their taker.
var inheritedGuards = sync.OnceValue(adoptInherited)

// inheritedGuard returns the inherited slot of the pool in dir, or nil.
func inheritedGuard(dir string) *Guard {
	for _, g := range inheritedGuards() {
		if g.pool.dir == dir {
			return g
		}
	}
	return nil
}

// adoptInherited checks each slot fdpass.EnvVar names: the descriptor must
// be open on the very file at the slot's path, still linked, and locked by
// this open file; a stale variable fails the check and is ignored.
func adoptInherited() []*Guard {
	v := os.Getenv(fdpass.EnvVar)
	if v == "" {
		return nil
	}
	log := packageLogger()
	ins, errs := fdpass.ParseAll(v, MaxSlots)
	for _, err := range errs {
		log.Debug("llmslots: ignoring an inherited slot", "err", err)
	}
	var guards []*Guard
	for _, in := range ins {
		p, err := NewPool(in.Dir)
		if err != nil {
			log.Debug("llmslots: ignoring an inherited slot", "err", err)
			continue
		}
		if slices.ContainsFunc(guards, func(g *Guard) bool { return g.pool.dir == p.dir }) {
			continue // one slot per pool: the first one named
		}
		path := slotfile.SlotPath(p.dir, in.ID)
		f, fi, err := fdpass.Adopt(in.FD, path)
		if err != nil && slotfile.HeldByAncestor(path) {
			// The descriptor is gone (closed by a shell, a sandbox) but an
			// ancestor holds the slot: rather than wait on ourselves, nest in
			// it with a stand-in descriptor (as a child we hand it to will).
			log.Debug("llmslots: inherited slot held by an ancestor", "path", path, "fd_err", err)
			if f, err = os.Open(os.DevNull); err == nil {
				guards = append(guards, newGuard(p, in.ID, f, nil, time.Now()))
				continue
			}
		}
		if err != nil {
			log.Debug("llmslots: ignoring an inherited slot", "fd", in.FD, "path", path, "err", err)
			continue
		}
		since := time.Now()
		if rec, err := slotfile.ReadRecordFrom(f); err == nil && !rec.Since.IsZero() {
			since = rec.Since
		}
		guards = append(guards, newGuard(p, in.ID, f, fi, since))
	}
	return guards
}

// CommandGrace is how long CommandContext's child is given to exit after
// SIGTERM, once its context is done, before it is killed.
const CommandGrace = 10 * time.Second

// Command returns the *exec.Cmd to run the named program holding g's slot,
// as exec.Command does: the child holds the slot while it (or a descendant
// that keeps the descriptor) lives, even once this process is killed
// (SIGKILL, or a signal to its pid alone) or calls Release. But output this
// process captures (Output, a buffer, StdoutPipe) comes through a pipe:
// orphaned, the child dies of SIGPIPE at its next write. Give it *os.File
// values (a file, os.Stdout), which it inherits, to keep it.
//
// The slot is handed on as Inherit does (cmd.ExtraFiles, LLMSLOTS_INHERITED
// in cmd.Env: append, do not replace). A failure to hand it on (a released
// Guard; errors.ErrUnsupported on Windows) goes in cmd.Err, as a failed path
// lookup does: Start, Run and Output return it. So:
//
//	err := g.Command("codex", "exec", prompt).Run()
func (g *Guard) Command(name string, arg ...string) *exec.Cmd {
	cmd := exec.Command(name, arg...)
	g.handTo(cmd)
	return cmd
}

// CommandContext is Command with a context, as exec.CommandContext: when
// ctx is done before the child exits, the child gets SIGTERM (on Windows,
// where there is none, it is killed), then SIGKILL if it has not exited
// CommandGrace later. The slot stays held until the child is gone. A nil
// ctx is an error in cmd.Err matching ErrInvalid.
func (g *Guard) CommandContext(ctx context.Context, name string, arg ...string) *exec.Cmd {
	if ctx == nil {
		cmd := exec.Command(name, arg...)
		cmd.Err = invalidf("CommandContext needs a non-nil context; use context.Background()")
		return cmd
	}
	cmd := exec.CommandContext(ctx, name, arg...)
	cmd.Cancel = func() error { return terminate(cmd.Process) }
	cmd.WaitDelay = CommandGrace
	g.handTo(cmd)
	return cmd
}

// handTo hands g's slot to cmd, or records why it cannot in cmd.Err. A
// lookup error exec already put there comes first.
func (g *Guard) handTo(cmd *exec.Cmd) {
	if cmd.Err == nil {
		cmd.Err = g.Inherit(cmd)
	}
}

// terminate asks p to exit: SIGTERM, or a kill where there is none.
func terminate(p *os.Process) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return p.Kill()
	}
	return nil
}

// Nested acquisition: the reference deadlocked when code holding a slot
// acquired again from the same pool (with max=1, forever). A context made by
// WithGuard, or a slot handed to a child (Inherit, PrepareExec), makes the
// inner acquire return a nested guard on the held slot instead, whose
// Release only closes its own descriptor of the locked file (the outer
// guard's open file keeps the lock) and never deletes the slot file.

type guardKey struct{}

// WithGuard returns a copy of ctx that carries g. AcquireContext on the
// same pool (the same directory) with this context, or one derived from
// it, returns at once a nested guard on g's slot instead of taking another,
// whatever max it is given; its Release leaves g's slot held. While g is
// released, the context acquires as usual. A nil ctx is context.Background().
//
// Pool.Acquire takes no context, so it does not see g; it does see a slot
// this process inherited (through LLMSLOTS_INHERITED; see Guard.Inherit).
func WithGuard(ctx context.Context, g *Guard) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithValue(ctx, guardKey{}, g)
}

// reenter is the first step of every acquire: a nested guard when the
// caller holds a slot of this pool (through ctx or its parent), else nil.
func (p *Pool) reenter(ctx context.Context) (*Guard, error) {
	if outer, _ := ctx.Value(guardKey{}).(*Guard); outer != nil && outer.pool != nil && outer.pool.dir == p.dir {
		if g, err := p.nestIn(outer); g != nil || err != nil {
			return g, err
		}
	}
	if outer := inheritedGuard(p.dir); outer != nil {
		return p.nestIn(outer)
	}
	return nil, nil
}

// nestIn returns a nested guard on outer's slot; nil, nil if it is released.
func (p *Pool) nestIn(outer *Guard) (*Guard, error) {
	outer.mu.Lock()
	defer outer.mu.Unlock()
	if outer.file == nil {
		return nil, nil
	}
	f, err := fdpass.Dup(outer.file)
	if err != nil {
		return nil, fmt.Errorf("llmslots: cannot nest in slot %d of %s: %w", outer.id, p.dir, err)
	}
	p.log().Debug("llmslots: nested in a held slot", "slot", outer.id, "dir", p.dir)
	g := newGuard(p, outer.id, f, nil, time.Now())
	g.outer = outer
	return g, nil
}

// nested reports whether g is a nested guard: made without a file identity.
func (g *Guard) nested() bool { return g.info == nil }
