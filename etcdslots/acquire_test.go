//go:build unix

package etcdslots_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/etcdslots"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestPoolNameRule: a cluster pool's name follows the host pools' rule
// ([a-z0-9._-], no leading dot, not a slot file name), so that --local-max
// can hold the host's pool of the same name; capitals are refused with a
// message that names the rule.
func TestPoolNameRule(t *testing.T) {
	t.Setenv("LLMSLOTS_DIR", t.TempDir()) // NamedPool below reads it; nothing is made there
	cli := newClient(t, sharedMember(t))
	for _, name := range []string{"codex", "a.b_c-9", "x", string(bytes.Repeat([]byte("a"), 64))} {
		if _, err := etcdslots.NewPool(cli, name); err != nil {
			t.Errorf("name %q: %v", name, err)
		}
	}
	for _, tt := range []struct{ name, want string }{
		{"Codex", `pool name may hold only [a-z0-9._-] (lowercase, as the host's pools), got "Codex"`},
		{"CODEX", "[a-z0-9._-]"},
		{".hidden", "must not start with a dot"},
		{"slot-0.lock", "slot file name"},
	} {
		_, err := etcdslots.NewPool(cli, tt.name)
		if !errors.Is(err, llmslots.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("name %q: got %v; want ErrInvalid saying %q", tt.name, err, tt.want)
		}
		if _, err := llmslots.NamedPool(tt.name); !errors.Is(err, llmslots.ErrInvalid) {
			t.Errorf("name %q: the host's pools accept it (%v); the two rules differ", tt.name, err)
		}
	}
}

func TestInvalidInputs(t *testing.T) {
	cli := newClient(t, sharedMember(t))
	if _, err := etcdslots.NewPool(nil, "x"); !errors.Is(err, llmslots.ErrInvalid) {
		t.Errorf("nil client: got %v, want ErrInvalid", err)
	}
	for _, name := range []string{"", ".", "..", "a/b", "a b", "ü", string(make([]byte, 65))} {
		if _, err := etcdslots.NewPool(cli, name); !errors.Is(err, llmslots.ErrInvalid) {
			t.Errorf("name %q: got %v, want ErrInvalid", name, err)
		}
	}
	for _, o := range []etcdslots.Option{etcdslots.WithTTL(0), etcdslots.WithTTL(2 * time.Hour), etcdslots.WithPrefix(""), etcdslots.WithPrefix("a/"), etcdslots.WithLossMargin(0), nil} {
		if _, err := etcdslots.NewPool(cli, "x", o); !errors.Is(err, llmslots.ErrInvalid) {
			t.Errorf("option: got %v, want ErrInvalid", err)
		}
	}
	if _, err := etcdslots.NewPool(cli, "x", etcdslots.WithTTL(2*time.Second), etcdslots.WithLossMargin(1500*time.Millisecond)); !errors.Is(err, llmslots.ErrInvalid) {
		t.Errorf("margin above TTL/2: got %v, want ErrInvalid", err)
	}
	p := newPool(t, cli)
	for _, max := range []int{-1, 0, 1025} {
		if _, err := p.Acquire(max, 0); !errors.Is(err, llmslots.ErrInvalid) {
			t.Errorf("Acquire(%d): got %v, want ErrInvalid", max, err)
		}
		if _, err := p.ReadStatus(context.Background(), max); !errors.Is(err, llmslots.ErrInvalid) {
			t.Errorf("ReadStatus(%d): got %v, want ErrInvalid", max, err)
		}
	}
	if _, err := p.Acquire(1, -time.Second); !errors.Is(err, llmslots.ErrInvalid) {
		t.Errorf("negative wait: got %v, want ErrInvalid", err)
	}
	//lint:ignore SA1012 a nil context is the input under test
	if _, err := p.AcquireContext(nil, 1); !errors.Is(err, llmslots.ErrInvalid) {
		t.Errorf("nil ctx: got %v, want ErrInvalid", err)
	}
}

func TestAcquireReleaseStatusToken(t *testing.T) {
	cli := newClient(t, sharedMember(t))
	p := newPool(t, cli, etcdslots.WithLabel("unit"))
	var last int64
	var gs []*etcdslots.Guard
	for want := range 3 {
		g, err := p.Acquire(3, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if g.SlotID() != want {
			t.Errorf("slot %d, want %d", g.SlotID(), want)
		}
		if g.Token() <= last {
			t.Errorf("token %d after %d: must grow", g.Token(), last)
		}
		last = g.Token()
		gs = append(gs, g)
	}
	st, err := p.ReadStatus(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != 3 || st.Free != 0 || len(st.Slots) != 3 || st.Dir != p.Dir() {
		t.Errorf("status %+v", st)
	}
	for _, s := range st.Slots {
		if s.State != llmslots.StateHeld || s.Label != "unit" || s.Host == "" || s.PID == 0 || s.Since.IsZero() {
			t.Errorf("slot %+v", s)
		}
	}
	if _, err := p.Acquire(3, 0); !errors.Is(err, llmslots.ErrBusy) {
		t.Fatalf("fourth acquire: got %v, want ErrBusy", err)
	}
	if err := gs[1].Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gs[1].Lost():
	default:
		t.Error("Lost not closed after Release")
	}
	g, err := p.Acquire(3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if g.SlotID() != 1 || g.Token() <= last {
		t.Errorf("slot %d token %d after a release of slot 1 (last token %d)", g.SlotID(), g.Token(), last)
	}
	for _, g := range append(gs, g) {
		_ = g.Release()
	}
	st, err = p.ReadStatus(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != 0 || st.Free != 3 || len(st.Waiting) != 0 {
		t.Errorf("after releases: %+v", st)
	}
}

// TestBusyLeavesTheLine: a waiter that gives up (wait over, ctx
// cancelled) leaves no key behind, and says who holds the slots.
func TestBusyLeavesTheLine(t *testing.T) {
	cli := newClient(t, sharedMember(t))
	p := newPool(t, cli)
	g, err := p.Acquire(1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	start := time.Now()
	_, err = p.Acquire(1, 300*time.Millisecond)
	if !errors.Is(err, llmslots.ErrBusy) {
		t.Fatalf("got %v, want ErrBusy", err)
	}
	t.Logf("busy after %v: %v", time.Since(start).Round(time.Millisecond), err)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err = p.AcquireContext(ctx, 1)
	if !errors.Is(err, context.Canceled) || errors.Is(err, etcdslots.ErrUnavailable) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	st, err := p.ReadStatus(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Waiting)+len(st.DeadWaiters) != 0 {
		t.Errorf("waiters left behind: %+v %+v", st.Waiting, st.DeadWaiters)
	}
}

// TestFIFO: waiters are served in the order they joined the line, and
// only the head moves when a slot frees.
func TestFIFO(t *testing.T) {
	cli := newClient(t, sharedMember(t))
	p := newPool(t, cli)
	const max, n = 2, 8
	var holders []*etcdslots.Guard
	for range max {
		g, err := p.Acquire(max, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		holders = append(holders, g)
	}
	var mu sync.Mutex
	var order []int
	granted := make(chan *etcdslots.Guard, n)
	for i := range n {
		go func() {
			g, err := p.Acquire(max, 30*time.Second)
			if err != nil {
				t.Error(err)
				granted <- nil
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			granted <- g
		}()
		// Join in a known order: wait until waiter i is in line.
		waitFor(t, 5*time.Second, func() bool {
			st, err := p.ReadStatus(context.Background(), max)
			return err == nil && len(st.Waiting) == i+1
		})
	}
	st, err := p.ReadStatus(context.Background(), max)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range st.Waiting {
		if w.Position != i+1 || w.Host == "" || w.PID == 0 || (i > 0 && w.Since.Before(st.Waiting[i-1].Since)) {
			t.Errorf("waiter %d in status: %+v", i, w)
		}
	}
	for _, g := range holders {
		g.Release()
	}
	for range n {
		g := <-granted
		if g != nil {
			g.Release()
		}
	}
	for i, w := range order {
		if i != w {
			t.Fatalf("grant order %v, want 0..%d", order, n-1)
		}
	}
}

// TestAcquireContextDone: a done ctx still makes one attempt.
func TestAcquireContextDone(t *testing.T) {
	cli := newClient(t, sharedMember(t))
	p := newPool(t, cli)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g, err := p.AcquireContext(ctx, 1)
	if err != nil {
		t.Fatalf("a done ctx still makes one attempt: %v", err)
	}
	defer g.Release()
	if _, err := p.AcquireContext(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestUnreachable: endpoints nobody answers on give ErrUnavailable within
// the wait, and grant nothing.
func TestUnreachable(t *testing.T) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	p, err := etcdslots.NewPool(cli, "unreachable")
	if err != nil {
		t.Fatal(err)
	}
	for _, wait := range []time.Duration{0, 1500 * time.Millisecond} {
		start := time.Now()
		_, err = p.Acquire(1, wait)
		took := time.Since(start)
		if !errors.Is(err, etcdslots.ErrUnavailable) {
			t.Errorf("wait %v: got %v, want ErrUnavailable", wait, err)
		}
		if took > max(wait, time.Second)+500*time.Millisecond {
			t.Errorf("wait %v: took %v", wait, took)
		}
		t.Logf("wait %v: error after %v: %v", wait, took.Round(time.Millisecond), err)
	}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
