package line

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/slotfile"
)

// oneSlot is a pool of one slot: a lock file in a temporary directory.
type oneSlot struct{ path string }

func newSlot(t *testing.T) *oneSlot {
	path := filepath.Join(t.TempDir(), "slot-0.lock")
	if err := os.WriteFile(path, []byte("pid=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &oneSlot{path}
}

// take locks the slot, or returns nil if it is held.
func (s *oneSlot) take(t *testing.T) *os.File {
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		t.Error(err)
		return nil
	}
	if ok, err := filelock.TryLock(f); !ok || err != nil {
		f.Close()
		return nil
	}
	return f
}

// waiter is one waiting goroutine's view of the slot; got is the slot it
// took.
type waiter struct {
	*oneSlot
	t   *testing.T
	got *os.File
}

func (w *waiter) Try() (bool, time.Time, error) {
	w.got = w.take(w.t)
	return w.got != nil, time.Time{}, nil
}

func (w *waiter) Paths() []string { return []string{w.path} }

func (w *waiter) Free() bool {
	res, err := slotfile.Probe(w.path, slotfile.Look)
	return err == nil && res.State != slotfile.Held
}

func newLine(t *testing.T) Line {
	dir := filepath.Join(t.TempDir(), slotfile.QueueDir)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return Line{Dir: dir}
}

func join(t *testing.T, l Line, arrived int64) *Ticket {
	t.Helper()
	tk, err := l.Join(arrived, slotfile.Record{PID: os.Getpid()}.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestJoinOrdersByArrival(t *testing.T) {
	l := newLine(t)
	if !l.Empty() {
		t.Fatal("Empty is false before anyone joined")
	}
	c, a, b := join(t, l, 3), join(t, l, 1), join(t, l, 2)
	for want, tk := range []*Ticket{a, b, c} {
		if got := l.Ahead(tk.Name()); got != want {
			t.Errorf("Ahead(%s) = %d, want %d", tk.Name(), got, want)
		}
	}
	ws, err := l.Waiters(slotfile.Look)
	if err != nil || len(ws) != 3 {
		t.Fatalf("Waiters = %v, %v; want 3", ws, err)
	}
	for i, tk := range []*Ticket{a, b, c} {
		if filepath.Base(ws[i].Path) != tk.Name() || !ws[i].Live || ws[i].Rec.PID != os.Getpid() {
			t.Errorf("waiter %d = %+v, want %s, live, pid %d", i, ws[i], tk.Name(), os.Getpid())
		}
	}
	for _, tk := range []*Ticket{a, b, c} {
		tk.Leave()
	}
	if !l.Empty() {
		t.Error("Empty is false after everyone left")
	}
}

// TestWaitServesInOrder starts the waiters' goroutines in reverse order
// of their tickets: the slot goes by ticket, each winner leaving the line
// and releasing the slot for the next.
func TestWaitServesInOrder(t *testing.T) {
	l, slot := newLine(t), newSlot(t)
	held := slot.take(t)
	tickets := []*Ticket{join(t, l, 1), join(t, l, 2), join(t, l, 3)}
	served := make(chan string, len(tickets))
	for i := len(tickets) - 1; i >= 0; i-- {
		go func(tk *Ticket) {
			w := &waiter{oneSlot: slot, t: t}
			ok, err := tk.Wait(context.Background(), time.Now().Add(30*time.Second), w)
			if !ok || err != nil {
				t.Errorf("%s: Wait = %v, %v", tk.Name(), ok, err)
			}
			served <- tk.Name()
			tk.Leave()
			if w.got != nil {
				w.got.Close()
			}
		}(tickets[i])
	}
	held.Close()
	for _, tk := range tickets {
		if got := <-served; got != tk.Name() {
			t.Fatalf("served %s, want %s", got, tk.Name())
		}
	}
}

// TestDeadTicketIsSkipped: a waiter behind a live ticket does not pass it
// (a slot left free for less than stallAfter is the first's), and once that
// ticket's lock is free (its waiter died, its file left behind), the one
// behind removes it and is served.
func TestDeadTicketIsSkipped(t *testing.T) {
	l, slot := newLine(t), newSlot(t)
	first, second := join(t, l, 1), join(t, l, 2)
	w := &waiter{oneSlot: slot, t: t}
	if ok, err := second.Wait(context.Background(), time.Now().Add(stallAfter/4), w); ok || err != nil {
		t.Fatalf("Wait behind a live ticket = %v, %v; want false, nil at the deadline", ok, err)
	}
	done := make(chan bool)
	go func() {
		ok, err := second.Wait(context.Background(), time.Now().Add(30*time.Second), w)
		if err != nil {
			t.Error(err)
		}
		done <- ok
	}()
	first.file.Close() // dies: the lock goes, the file stays
	if !<-done {
		t.Fatal("Wait behind a dead ticket was not served")
	}
	defer w.got.Close()
	if _, err := os.Lstat(filepath.Join(l.Dir, first.Name())); !os.IsNotExist(err) {
		t.Errorf("the dead ticket is still there: %v", err)
	}
	second.Leave()
}

func TestWaitEndsWithItsContext(t *testing.T) {
	l, slot := newLine(t), newSlot(t)
	held := slot.take(t)
	defer held.Close()
	tk := join(t, l, 1)
	defer tk.Leave()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := tk.Wait(ctx, time.Time{}, &waiter{oneSlot: slot, t: t})
		done <- err
	}()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
}
