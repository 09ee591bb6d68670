//go:build unix

package llmslots

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/proc"
	"github.com/llmslots/llmslots/internal/slotfile"
)

// A pool with a free, a held, a stale and a garbage slot, as status sees it.
func TestStatusTellsFreeHeldAndStale(t *testing.T) {
	p := newTestPool(t)
	holder := startHelper(t, "hold", p.Dir(), 1)
	holder.held() // slot 0
	dead := startHelper(t, "hold", p.Dir(), 2)
	dead.held() // slot 1
	dead.kill()
	// Slot 3: garbage left by some other tool; slot 4: an empty file (a
	// holder that died between create and write); nobody locks either.
	os.WriteFile(p.SlotPath(3), []byte("\x00\xffpid=banana\nnot a record"), 0o600)
	os.WriteFile(p.SlotPath(4), nil, 0o600)
	old := time.Now().Add(-2 * slotfile.FreshAge)
	os.Chtimes(p.SlotPath(4), old, old)

	st, err := p.ReadStatus(5)
	if err != nil {
		t.Fatal(err)
	}
	want := []SlotState{StateHeld, StateStale, StateFree, StateStale, StateStale}
	for i, s := range st.Slots {
		if s.State != want[i] {
			t.Errorf("slot %d: %s; want %s", i, s.State, want[i])
		}
	}
	if st.Max != 5 || st.Active != 1 || st.Free != 4 || st.Stale != 3 || len(st.PIDs) != 1 || st.PIDs[0] != holder.pid() {
		t.Errorf("status %+v", st)
	}
	s0 := st.Slots[0]
	if s0.PID != holder.pid() || s0.Label != "helper hold" || s0.Since.IsZero() || s0.AgeSecs < 0 || s0.Command == "" || s0.Path != p.SlotPath(0) {
		t.Errorf("held slot %+v", s0)
	}
	if st.Slots[1].PID != dead.pid() {
		t.Errorf("stale slot names pid %d; want the dead %d", st.Slots[1].PID, dead.pid())
	}
	if st.Slots[3].PID != 0 {
		t.Errorf("garbage slot reads pid %d", st.Slots[3].PID)
	}

	stale, err := p.FindStale(5)
	if err != nil || len(stale) != 3 || stale[0] != 1 || stale[1] != 3 || stale[2] != 4 {
		t.Fatalf("FindStale: %v %v", stale, err)
	}
	// Reading status changed nothing.
	if _, err := os.Stat(p.SlotPath(1)); err != nil {
		t.Fatal("status removed a file")
	}
	if _, err := os.Stat(p.SlotPath(2)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("status created a file")
	}

	// JSON carries the documented names.
	b, _ := json.Marshal(st)
	for _, key := range []string{`"max":5`, `"active":1`, `"free":4`, `"pids":[`, `"slots":[`, `"slot_id":0`, `"state":"held"`, `"pid":`, `"host":`, `"since":`, `"age_secs":`, `"label":"helper hold"`, `"command":`, `"path":`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
}

func TestForceRelease(t *testing.T) {
	p := newTestPool(t)
	holder := startHelper(t, "hold", p.Dir(), 1)
	holder.held()
	dead := startHelper(t, "hold", p.Dir(), 2)
	dead.held()
	dead.kill()

	err := p.ForceRelease(0)
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(holder.pid())) {
		t.Fatalf("ForceRelease of a held slot: %v; want ErrHeld naming pid %d", err, holder.pid())
	}
	if _, err := os.Stat(p.SlotPath(0)); err != nil {
		t.Fatal("refused ForceRelease still deleted the file")
	}
	if err := p.ForceRelease(1); err != nil {
		t.Fatalf("ForceRelease of a stale slot: %v", err)
	}
	if _, err := os.Stat(p.SlotPath(1)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("stale slot file not removed")
	}
	if err := p.ForceRelease(7); err != nil {
		t.Fatalf("ForceRelease of an absent slot: %v", err)
	}
	// In this process too: a held guard's slot is refused.
	g := mustAcquire(t, p, 2, 0)
	if err := p.ForceRelease(g.SlotID()); !errors.Is(err, ErrHeld) {
		t.Fatalf("ForceRelease of our own held slot: %v", err)
	}
}

// An empty file whose lock is free may be one whose creator has not
// locked it yet (a process following the reference does not check its file
// afterwards): it counts as held until it is old enough to be a dead
// holder's, and nobody deletes it before.
func TestYoungEmptySlotFileCountsAsHeld(t *testing.T) {
	p := newTestPool(t)
	mustAcquire(t, p, 1, 0).Release() // make the directory
	os.WriteFile(p.SlotPath(0), nil, 0o600)
	st, err := p.ReadStatus(1)
	if err != nil || st.Slots[0].State != StateHeld || st.Slots[0].Detail == "" {
		t.Fatalf("status %+v %v", st.Slots, err)
	}
	if _, err := p.Acquire(1, 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("Acquire took a young empty file: %v", err)
	}
	if err := p.ForceRelease(0); !errors.Is(err, ErrHeld) {
		t.Fatalf("ForceRelease: %v", err)
	}
	old := time.Now().Add(-2 * slotfile.FreshAge)
	os.Chtimes(p.SlotPath(0), old, old)
	if g := mustAcquire(t, p, 1, 0); g.SlotID() != 0 {
		t.Fatal("an old empty file was not reclaimed")
	}
}

// A process using a larger max holds slot 3; a status for max 2 must still
// count it, since it takes part of everyone's limit.
func TestStatusShowsSlotsBeyondMax(t *testing.T) {
	p := newTestPool(t)
	for range 4 {
		mustAcquire(t, p, 4, 0)
	}
	os.WriteFile(filepath.Join(p.Dir(), "slot-01.lock"), nil, 0o600) // not a slot name
	os.WriteFile(filepath.Join(p.Dir(), "notes.txt"), nil, 0o600)
	st, err := p.ReadStatus(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Slots) != 4 || st.Active != 4 || st.Free != 0 || st.Slots[3].SlotID != 3 {
		t.Fatalf("status %+v", st)
	}
}

func TestStatusOfMissingDirectoryIsAllFreeAndCreatesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "never-used")
	p, _ := NewPool(dir)
	st, err := p.ReadStatus(3)
	if err != nil || st.Free != 3 || st.Active != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	if stale, err := p.FindStale(3); err != nil || len(stale) != 0 {
		t.Fatalf("%v %v", stale, err)
	}
	if err := p.ForceRelease(0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("reading status created the directory")
	}
}

// Where the lock cannot be tried, the recorded pid decides, and only a pid
// that is gone makes a slot stale.
func TestFallbackJudgesByPid(t *testing.T) {
	dead := startHelper(t, "hold", t.TempDir(), 1)
	dead.held()
	dead.kill()
	cases := []struct {
		name string
		rec  slotfile.Record
		want SlotState
	}{
		{"live pid", slotfile.Record{PID: os.Getpid(), Start: proc.StartTime(os.Getpid())}, StateHeld},
		{"dead pid", slotfile.Record{PID: dead.pid()}, StateStale},
		{"reused pid", slotfile.Record{PID: os.Getpid(), Start: "1"}, StateStale},
		{"no pid", slotfile.Record{}, StateHeld},
		{"other host", slotfile.Record{PID: dead.pid(), Host: "elsewhere.invalid"}, StateHeld},
		{"other pid namespace", slotfile.Record{PID: dead.pid(), Host: slotfile.Self().Host, PidNS: "1"}, StateHeld},
		{"same pid namespace", slotfile.Record{PID: dead.pid(), Host: slotfile.Self().Host, PidNS: slotfile.Self().PidNS}, StateStale},
	}
	if proc.StartTime(os.Getpid()) == "" {
		cases = cases[:2]
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "slot-0.lock")
			os.WriteFile(path, c.rec.Marshal(), 0o600)
			res := slotfile.FallbackProbe(path, syscall.EACCES)
			if SlotState(res.State) != c.want || res.Detail == "" {
				t.Fatalf("got %s (%s); want %s", res.State, res.Detail, c.want)
			}
		})
	}
}

func TestPidAlive(t *testing.T) {
	dead := startHelper(t, "hold", t.TempDir(), 1)
	dead.held()
	dead.kill()
	if !proc.Alive(os.Getpid()) {
		t.Error("this process is not alive?")
	}
	// pid 1 is alive; for a non-root test run kill(1, 0) fails with EPERM,
	// which must still read as alive.
	if !proc.Alive(1) {
		t.Error("pid 1 reads as dead")
	}
	for _, pid := range []int{dead.pid(), 0, -1} {
		if proc.Alive(pid) {
			t.Errorf("pid %d reads as alive", pid)
		}
	}
}

// A slot handed on to a child stays held when the process that took it is
// killed; status says so, and names the recorded pid as gone, rather than
// calling the slot stale or its holder alive.
func TestStatusNamesAHandedOnHolder(t *testing.T) {
	dir := t.TempDir()
	h := startHelper(t, "handon", dir, 1)
	l := h.line()
	pid, err := strconv.Atoi(strings.TrimPrefix(l, "child "))
	if err != nil {
		t.Fatalf("helper: %q", l)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	p, _ := NewPool(dir)
	st, err := p.ReadStatus(1)
	if err != nil || st.Slots[0].State != StateHeld || st.Slots[0].Detail != "" {
		t.Fatalf("while its taker lives: %+v %v; want held, no detail", st.Slots[0], err)
	}
	h.kill()
	st, err = p.ReadStatus(1)
	if err != nil || st.Slots[0].State != StateHeld || st.Slots[0].PID != h.pid() || st.Slots[0].Detail != handedOnDetail {
		t.Fatalf("after its taker was killed: %+v %v; want held by the child, the dead pid named as gone", st.Slots[0], err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, _ = p.ReadStatus(1)
		if st.Slots[0].State != StateHeld {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the child died too: %+v; want stale", st.Slots[0])
		}
	}
	if st.Slots[0].State != StateStale {
		t.Fatalf("after the child died too: %+v; want stale", st.Slots[0])
	}
}
