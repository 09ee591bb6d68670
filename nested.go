package llmslots

import (
	"context"
	"fmt"
	"time"

	"github.com/llmslots/llmslots/internal/fdpass"
)

// Nested acquisition. The reference deadlocked here: code holding a slot
// called code that acquired again from the same pool, and with max=1 it
// waited on itself forever. Two things a holder passes down make the inner
// acquire return the held slot instead, as a nested guard:
//
//   - within a process, a context made by WithGuard;
//   - across processes, a slot handed to a child (Inherit, PrepareExec).
//
// A nested guard names the outer guard's slot, and its Release leaves that
// slot held: it only closes the nested guard's own descriptor of the
// locked file, and the lock belongs to the open file, which the outer
// guard keeps. It never deletes the slot file (its info is nil).

type guardKey struct{}

// WithGuard returns a copy of ctx that carries g. AcquireContext on the
// same pool (the same directory) with this context, or one derived from
// it, returns at once a nested guard on g's slot instead of taking another
// slot, whatever max it is given; the nested guard's Release leaves g's
// slot held. While g is released, the context acquires as usual. A nil ctx
// is taken as context.Background().
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
// caller already holds a slot of this pool, through ctx or through its
// parent process; nil, nil otherwise.
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

// nestIn returns a nested guard on outer's slot; nil, nil if outer has been
// released.
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
	// No file identity: a nested guard never deletes the slot file.
	g := newGuard(p, outer.id, f, nil, time.Now())
	g.outer = outer
	return g, nil
}

// nested reports whether g is a nested guard: the only guards made
// without the locked file's identity.
func (g *Guard) nested() bool { return g.info == nil }
