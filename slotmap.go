package llmslots

import (
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// The slot map lets an acquire in a large pool go straight to a free slot.
// Trying slots lowest first costs a failed system call per held slot ahead
// of the first free one: with 512 holders on max 1024, 1.4 ms, and a read
// of the directory instead still about 0.4 ms. The map, .queue/slotmap,
// holds a byte per slot: mapTaken while a process that took the slot with
// max above mapFrom holds it, anything else when the slot is thought free.
// An acquire reads the first max bytes (one pread) and tries the lowest
// slot the map shows free, then others it shows free (see tryMapped).
//
// The map is a hint and never decides: the slot file and its lock do. Its
// byte is written only by the slot's holder, while holding it (taken
// after the slot is taken, free before it is released), so it is wrong
// only where a holder could not write it: one that died, or handed the
// slot to a child (Command, Inherit: the byte says taken until a full pass
// takes the slot again), one that uses a smaller max or another version
// (their slots' bytes say free), or a planted file. So
// a slot the map calls free may be held (the link fails, the next is
// tried) and one it calls taken may be free; when the first few slots it
// calls free are all held, or none is, the acquire falls back to trying
// every slot as before, which reclaims dead holders' slots and rewrites
// their bytes as it takes them.
const (
	slotMapName = "slotmap"
	mapTaken    = 'x'
	mapFree     = '-'
	// mapTries is how many slots the map calls free are tried before the
	// map is distrusted and every slot is tried.
	mapTries = 8
)

// mapFrom is the pool size above which acquires use the map. Below it,
// the few failed attempts the map saves cost less than its read and two
// writes. Tests lower it (LLMSLOTS_TEST_SLOTMAP) to run the map's code on
// small pools too, the chaos test among them.
var mapFrom = 32

func slotMapPath(poolDir string) string {
	return filepath.Join(queueDir(poolDir), slotMapName)
}

// slotMap returns the open slot map, opening (and, the first time in a
// pool, creating) it; nil when it cannot be used, which only costs speed.
func (p *Pool) slotMap() *os.File {
	if f := p.slotmap.Load(); f != nil {
		return f
	}
	if p.slotmapBad.Load() {
		return nil
	}
	p.slotmapMu.Lock()
	defer p.slotmapMu.Unlock()
	if f := p.slotmap.Load(); f != nil {
		return f
	}
	f, err := p.openSlotMap(slotMapPath(p.dir))
	if err != nil {
		// Once per pool: a planted or unwritable map is not fixed by
		// trying again at every acquire.
		p.slotmapBad.Store(true)
		p.log().Debug("llmslots: slot map unusable; trying each slot instead", "dir", p.dir, "err", err)
		return nil
	}
	p.slotmap.Store(f)
	return f
}

// openSlotMap opens the map for reading and writing, creating it if
// missing; anything but a regular file with one name is refused.
func (p *Pool) openSlotMap(path string) (*os.File, error) {
	f, err := p.openPoolFile(path, "slotmap", os.O_RDWR)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = soleRegular(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// dropSlotMap closes the map, for a pool whose directory is made again.
func (p *Pool) dropSlotMap() {
	if f := p.slotmap.Swap(nil); f != nil {
		f.Close()
	}
	p.slotmapBad.Store(false)
}

// tryMapped tries the slots the map shows free, up to mapTries of them:
// the lowest first, then, if another process took that one meanwhile,
// from a random place on. Every acquirer that arrives at once reads the
// same lowest free slot, and all but one fail to take it: going on from
// the next one up would make them collide again slot after slot, and a
// map byte can lag its slot (between a holder's link and its write, or a
// releaser's write and its unlink, when it is descheduled there), which
// costs each of them a failed attempt too. It returns nil, nil when it
// took none (the caller then tries every slot).
func (p *Pool) tryMapped(m *os.File, max int, s *spare, now time.Time) (*Guard, error) {
	buf := make([]byte, max)
	_, err := m.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil
	}
	// Past the file's end buf stays zero: a slot never taken.
	free := func(id int) bool { return buf[id] != mapTaken && !heldHere(slotPath(p.dir, id)) }
	id, tries := 0, 0
	for tries < mapTries {
		for steps := 0; steps < max && !free(id); steps++ {
			id = (id + 1) % max
		}
		if !free(id) {
			return nil, nil // every slot shown taken, or ours
		}
		tries++
		g, _, err := p.take(id, slotPath(p.dir, id), max, s, now)
		if g != nil || err != nil {
			return g, err
		}
		buf[id] = mapTaken // held after all: not again
		if tries == 1 {
			id = rand.IntN(max)
		}
	}
	return nil, nil
}

// markSlot writes slot id's byte in the map: taken or free. Only the
// slot's holder calls it, while it holds the slot. A failed write only
// makes the hint worse.
func (p *Pool) markSlot(id, max int, taken bool) {
	if max <= mapFrom {
		return
	}
	m := p.slotMap()
	if m == nil {
		return
	}
	b := []byte{mapFree}
	if taken {
		b[0] = mapTaken
	}
	m.WriteAt(b, int64(id))
}
