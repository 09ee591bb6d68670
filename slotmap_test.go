//go:build unix

package llmslots

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// slotMapEnv, set for a test run, makes every pool use the slot map, so
// that the whole suite and the chaos test run its code on small pools.
const slotMapEnv = "LLMSLOTS_TEST_SLOTMAP"

// holdManyHelper takes HELPER_N slots, says "held" and their ids, then
// releases each slot whose id a line of stdin names, saying "released
// ID"; it holds the rest until it is killed or stdin closes.
func holdManyHelper() int {
	p, max, ok := helperPool("hold-many")
	if !ok {
		return 1
	}
	n, _ := strconv.Atoi(os.Getenv("HELPER_N"))
	held := map[int]*Guard{}
	ids := []string{"held"}
	for range n {
		g, err := p.Acquire(max, 10*time.Second)
		if err != nil {
			fmt.Println("error", err)
			return 3
		}
		held[g.SlotID()] = g
		ids = append(ids, strconv.Itoa(g.SlotID()))
	}
	fmt.Println(strings.Join(ids, " "))
	var id int
	for {
		if _, err := fmt.Fscanln(os.Stdin, &id); err != nil {
			return 0
		}
		if err := held[id].Release(); err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("released", id)
	}
}

// mapBytes returns the pool's slot map, or fails the test.
func mapBytes(t *testing.T, p *Pool) []byte {
	t.Helper()
	b, err := os.ReadFile(slotMapPath(p.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// In a large pool an acquire goes to the lowest slot the map shows free,
// and a slot released in the middle is the next one taken: the map keeps
// lowest-first.
func TestSlotMapFindsTheLowestFreeSlot(t *testing.T) {
	const max, n = 64, 40
	p := newTestPool(t)
	h := startHelper(t, "hold-many", p.Dir(), max, "HELPER_N="+strconv.Itoa(n))
	if l := h.line(); !strings.HasPrefix(l, "held 0 1 2 ") || !strings.HasSuffix(l, " 39") {
		t.Fatalf("helper said %q", l)
	}
	if m := mapBytes(t, p); !bytes.Equal(m[:n], bytes.Repeat([]byte{mapTaken}, n)) {
		t.Fatalf("map after %d acquires: %q", n, m)
	}
	g := mustAcquire(t, p, max, 0)
	if g.SlotID() != n {
		t.Fatalf("took slot %d; want %d, the lowest free", g.SlotID(), n)
	}
	if m := mapBytes(t, p); m[n] != mapTaken {
		t.Fatalf("map byte of the slot taken: %q", m[n])
	}
	fmt.Fprintln(h.stdin, 7)
	if l := h.line(); l != "released 7" {
		t.Fatalf("helper said %q", l)
	}
	if m := mapBytes(t, p); m[7] != mapFree {
		t.Fatalf("map byte of a released slot: %q", m[7])
	}
	g2 := mustAcquire(t, p, max, 0)
	if g2.SlotID() != 7 {
		t.Fatalf("took slot %d; want 7, freed in the middle", g2.SlotID())
	}
	g.Release()
	if m := mapBytes(t, p); m[n] != mapFree {
		t.Fatalf("map byte after Release: %q", m[n])
	}
}

// The map is a hint: when it is wrong, whichever way, every free slot is
// still found and no slot is ever taken twice.
func TestSlotMapThatLiesCostsNoSlot(t *testing.T) {
	const max = 40
	t.Run("dead_holders_marked_taken", func(t *testing.T) {
		// A holder SIGKILLed leaves its slots marked taken.
		p := newTestPool(t)
		h := startHelper(t, "hold-many", p.Dir(), max, "HELPER_N="+strconv.Itoa(max))
		h.line()
		h.kill()
		takeAll(t, p, max, max)
	})
	t.Run("every_slot_marked_taken", func(t *testing.T) {
		p := newTestPool(t)
		plantMap(t, p, bytes.Repeat([]byte{mapTaken}, max))
		takeAll(t, p, max, max)
	})
	t.Run("held_slots_marked_free", func(t *testing.T) {
		// Holders that never write the map (an older version, a smaller
		// max, the reference): the map shows free what is held.
		p := newTestPool(t)
		h := startHelper(t, "hold-many", p.Dir(), max, "HELPER_N=30")
		h.line()
		plantMap(t, p, bytes.Repeat([]byte{mapFree}, max))
		// The lowest slot shown free is held, so the acquire goes on from
		// a random one (tryMapped): any of the 10 free slots may come first,
		// and takeAll checks that each comes once and none of the held.
		for _, g := range takeAll(t, p, max, max-30) {
			if g.SlotID() < 30 {
				t.Errorf("took slot %d, which the helper holds", g.SlotID())
			}
		}
	})
	t.Run("garbage", func(t *testing.T) {
		p := newTestPool(t)
		plantMap(t, p, []byte("\x00\xffnot a map at all\n"))
		takeAll(t, p, max, max)
	})
}

// takeAll takes n slots of p's first max at once, each in one attempt,
// checks that no slot comes twice, and that one more attempt finds the
// pool full.
func takeAll(t *testing.T, p *Pool, max, n int) []*Guard {
	t.Helper()
	var gs []*Guard
	seen := map[int]bool{}
	for i := range n {
		g, err := p.Acquire(max, 0)
		if err != nil {
			t.Fatalf("acquire %d of %d: %v", i+1, n, err)
		}
		t.Cleanup(func() { g.Release() })
		if seen[g.SlotID()] {
			t.Fatalf("slot %d taken twice", g.SlotID())
		}
		seen[g.SlotID()] = true
		gs = append(gs, g)
	}
	if g, err := p.Acquire(max, 0); !errors.Is(err, ErrBusy) {
		g.Release()
		t.Fatalf("acquire past the %d free slots: %v; want ErrBusy", n, err)
	}
	return gs
}

// plantMap writes b as p's slot map, as a process that knows no better
// (or means harm) could.
func plantMap(t *testing.T, p *Pool, b []byte) {
	t.Helper()
	if err := p.prepare(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(slotMapPath(p.Dir()), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A slot map that is not a regular file is not used, nor followed, nor
// waited on: the acquire tries every slot as before.
func TestPlantedSlotMapIsNotUsed(t *testing.T) {
	const max = 40
	for _, kind := range []string{"symlink", "fifo", "directory"} {
		t.Run(kind, func(t *testing.T) {
			p := newTestPool(t)
			if err := p.prepare(); err != nil {
				t.Fatal(err)
			}
			path := slotMapPath(p.Dir())
			target := filepath.Join(t.TempDir(), "victim")
			os.WriteFile(target, []byte("keep"), 0o600)
			var err error
			switch kind {
			case "symlink":
				err = os.Symlink(target, path)
			case "fifo":
				err = unix.Mkfifo(path, 0o600)
			case "directory":
				err = os.Mkdir(path, 0o700)
			}
			if err != nil {
				t.Fatal(err)
			}
			takeAll(t, p, max, max) // a FIFO is opened without waiting for a writer
			if b, _ := os.ReadFile(target); string(b) != "keep" {
				t.Errorf("the symlink's target was written: %q", b)
			}
		})
	}
}

// A file hard-linked at the map's path is not written: its bytes would be
// changed by every acquire and release.
func TestHardLinkedSlotMapIsNotWritten(t *testing.T) {
	const max = 40
	p := newTestPool(t)
	if err := p.prepare(); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(p.Dir(), "precious")
	if err := os.WriteFile(victim, []byte("precious data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(victim, slotMapPath(p.Dir())); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mustAcquire(t, p, max, 0).Release()
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious data" {
		t.Fatalf("the hard-linked file was written: %q", b)
	}
}
