package llmslots

import (
	"context"
	"errors"
	"testing"
	"time"
)

// With max=1, code that holds the slot and calls code that acquires again
// must get the held slot back at once (the reference waited on itself),
// and releasing the inner guard must leave the outer slot held.
func TestWithGuardNestsInsteadOfWaiting(t *testing.T) {
	p, err := NewPool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	outer, err := p.Acquire(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Release()

	// Without the guard in the context this would wait the full 10 s and
	// fail; with it, it must return at once.
	ctx, cancel := context.WithTimeout(WithGuard(context.Background(), outer), 10*time.Second)
	defer cancel()
	start := time.Now()
	inner, err := p.AcquireContext(ctx, 1)
	if err != nil {
		t.Fatalf("nested AcquireContext: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("nested AcquireContext took %v; want at once", took)
	}
	if inner.SlotID() != outer.SlotID() || inner.Path() != outer.Path() || !inner.Held() {
		t.Errorf("nested guard: slot %d %q held=%v; want the outer slot %d %q, held",
			inner.SlotID(), inner.Path(), inner.Held(), outer.SlotID(), outer.Path())
	}
	// A pool value of its own on the same directory nests too.
	same, _ := NewPool(p.Dir())
	again, err := same.AcquireContext(ctx, 1)
	if err != nil || again.SlotID() != outer.SlotID() {
		t.Fatalf("nested AcquireContext through another Pool of the same dir: %v, %v", again, err)
	}
	if err := again.Release(); err != nil {
		t.Fatal(err)
	}

	if err := inner.Release(); err != nil {
		t.Fatalf("nested Release: %v", err)
	}
	if !outer.Held() {
		t.Fatal("releasing the nested guard released the outer one")
	}
	if _, err := p.Acquire(1, 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("after the nested Release, a fresh Acquire(1, 0) gave %v; want ErrBusy (outer still holds)", err)
	}
	if st, _ := p.ReadStatus(1); st.Slots[0].State != StateHeld {
		t.Fatalf("after the nested Release, status says %s; want held", st.Slots[0].State)
	}

	if err := outer.Release(); err != nil {
		t.Fatal(err)
	}
	// A released outer guard nests nothing: the context acquires as usual.
	g, err := p.AcquireContext(ctx, 1)
	if err != nil {
		t.Fatalf("after the outer Release: %v", err)
	}
	if !g.Held() || g.nested() {
		t.Fatal("after the outer Release the context still nested")
	}
	g.Release()
}

// A guard in the context nests only in its own pool: another directory
// keeps its own limit.
func TestWithGuardOtherPoolTakesItsOwnSlot(t *testing.T) {
	a, _ := NewPool(t.TempDir())
	b, _ := NewPool(t.TempDir())
	ga, err := a.Acquire(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ga.Release()
	gb, err := b.AcquireContext(WithGuard(context.Background(), ga), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer gb.Release()
	if gb.nested() || gb.Path() == ga.Path() {
		t.Fatalf("a guard of %s nested in pool %s", a.Dir(), b.Dir())
	}
}

// The outer guard may be released before the nested one: the slot is then
// free for others, and the late nested Release deletes nothing.
func TestOuterReleasedBeforeNested(t *testing.T) {
	p, _ := NewPool(t.TempDir())
	outer, err := p.Acquire(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := p.AcquireContext(WithGuard(context.Background(), outer), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := outer.Release(); err != nil {
		t.Fatal(err)
	}
	next, err := p.Acquire(1, 0)
	if err != nil {
		t.Fatalf("after the outer Release: %v", err)
	}
	defer next.Release()
	if err := inner.Release(); err != nil {
		t.Fatal(err)
	}
	if st, _ := p.ReadStatus(1); st.Slots[0].State != StateHeld {
		t.Fatalf("the late nested Release freed the next holder's slot: %s", st.Slots[0].State)
	}
}

func TestWithGuardNilInputs(t *testing.T) {
	p, _ := NewPool(t.TempDir())
	//lint:ignore SA1012 a nil context must not panic
	ctx := WithGuard(nil, nil)
	g, err := p.AcquireContext(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	g.Release()
}
