package llmslots

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/llmslots/llmslots/internal/slotfile"
)

// SlotState is what a slot's lock says about it.
type SlotState string

// The states of a slot.
const (
	// StateFree: no slot file; the next acquirer creates it.
	StateFree SlotState = "free"
	// StateHeld: a live process holds the slot's lock.
	StateHeld SlotState = "held"
	// StateStale: a slot file whose lock nobody holds: its holder died
	// without deleting it. The next acquirer reclaims it on the spot;
	// FindStale lists it and ForceRelease removes it.
	StateStale SlotState = "stale"
	// StateInvalid: something no llmslots process makes is at the slot's
	// path (a symlink, a FIFO, a directory). Acquire never follows, deletes
	// or uses it: the pool works with one slot fewer until it is removed.
	StateInvalid SlotState = "invalid"
)

// Status is a snapshot of a pool's slots, decided by their locks.
type Status struct {
	Dir    string `json:"dir"`    // the pool's directory
	Max    int    `json:"max"`    // the pool size the status was read for
	Active int    `json:"active"` // held slots, beyond Max too: they count against everyone's limit
	Free   int    `json:"free"`   // slots below Max an acquirer could take now (free or stale)
	Stale  int    `json:"stale"`  // slot files left by dead holders
	// PIDs lists the holders' pids, by slot; a holder whose record could
	// not be read is left out. Never null in JSON.
	PIDs  []int        `json:"pids"`
	Slots []SlotStatus `json:"slots"` // slots 0..Max-1, then any slot file beyond Max
	// Waiting lists the waiters in the order they will be served (one just
	// served leaves it an instant after its caller). Never null in JSON.
	Waiting []WaiterStatus `json:"waiting"`
	// DeadWaiters lists tickets left by waiters that died; the queue
	// skips them (see RemoveDeadWaiters). Never null in JSON.
	DeadWaiters []WaiterStatus `json:"dead_waiters"`
	// OtherMaxes lists, in increasing order, the other max values that live
	// holders and waiters recorded: each enforces its own. Never null in JSON.
	OtherMaxes []int `json:"other_maxes"`
	// Limit is the effective limit: how many may hold a slot at once now.
	// Max, unless throttle reports (Guard.Throttled) lowered it.
	Limit int `json:"limit"`
	// Throttle is the pool's throttling state (limit, pause, last report);
	// nil (omitted) when no report was ever made, or after Pool.Resume.
	Throttle *ThrottleStatus `json:"throttle,omitempty"`
}

// SlotStatus describes one slot; for a free one, only SlotID, State and Path.
type SlotStatus struct {
	SlotID  int       `json:"slot_id"`
	State   SlotState `json:"state"`
	PID     int       `json:"pid"` // the recorded holder's pid; 0 when unknown
	Host    string    `json:"host"`
	Since   time.Time `json:"since,omitzero"` // when the holder took the slot; zero when unknown
	AgeSecs float64   `json:"age_secs"`       // how long ago Since was, in seconds
	Label   string    `json:"label"`
	Command string    `json:"command"`
	Path    string    `json:"path"`
	// Detail says why the state was decided otherwise than by the lock (the
	// file could not be opened), what an invalid entry is, or that a held
	// slot's recorded pid is not running here: another process holds the
	// lock (one the holder handed it to, or a holder in another namespace).
	Detail string `json:"detail,omitempty"`
	// Max is the max the holder asked with; 0 when unknown (records of
	// the reference and of older versions have none).
	Max int `json:"max,omitempty"`
	// Here is true when the recorded pid names a live process of this host
	// and pid namespace, started when the record says: the holder itself,
	// which may be signalled. False for a holder in another container or on
	// another host, for a reused pid, and when it cannot be told.
	Here bool `json:"here"`
	Self bool `json:"self,omitempty"` // the holder is the process reading the status
}

// handedOnDetail is the Detail of a held slot whose recorded holder is not
// running here (see SlotStatus.Detail).
const handedOnDetail = "its recorded pid is not running here; another process holds the lock (one the holder handed the slot to, or a holder in another pid namespace)"

// ReadStatus reports the state of slots 0..max-1, and of any other slot
// file in the directory. It creates and changes nothing: a missing
// directory reads as all free. Each held slot is probed with a non-blocking
// lock attempt, which an acquirer racing with it may see as busy for that
// instant. The status is a snapshot: slots may change as soon as it is read.
func (p *Pool) ReadStatus(max int) (Status, error) {
	if err := p.usable(); err != nil {
		return Status{}, err
	}
	if err := checkMax(max); err != nil {
		return Status{}, err
	}
	return p.scan(max)
}

// scan probes every slot file below max and beyond it, and the queue.
func (p *Pool) scan(max int) (Status, error) {
	st := Status{Dir: p.dir, Max: max, PIDs: []int{}, Slots: []SlotStatus{}, Waiting: []WaiterStatus{}, DeadWaiters: []WaiterStatus{}, Limit: max}
	exists, err := p.group.maker().Inspect(p.dir, EnvDir)
	if err != nil {
		return Status{}, err
	}
	present := map[int]bool{}
	if exists {
		entries, err := os.ReadDir(p.dir)
		if err != nil {
			return Status{}, fmt.Errorf("llmslots: %w", err)
		}
		for _, e := range entries {
			if id := slotfile.ParseSlotName(e.Name()); id >= 0 {
				present[id] = true
			}
		}
	}
	now := time.Now()
	for id := range MaxSlots { // slots 0..max-1, then the files beyond, in order
		if id >= max && !present[id] {
			continue
		}
		s := SlotStatus{SlotID: id, State: StateFree, Path: slotfile.SlotPath(p.dir, id)}
		if present[id] {
			res, err := slotfile.Probe(s.Path, slotfile.Look)
			if err != nil {
				return Status{}, err
			}
			s.State, s.Detail = SlotState(res.State), res.Detail
			if res.State == slotfile.Held && res.Detail == "" && res.Rec.PID > 0 && !slotfile.HolderAlive(res.Rec) {
				s.Detail = handedOnDetail
			}
			if res.State != slotfile.Free {
				r := res.Rec
				s.PID, s.Host, s.Label, s.Command, s.Max = r.PID, r.Host, r.Label, r.Command, r.Max
				s.Here = res.State == slotfile.Held && slotfile.HolderHere(r)
				s.Self = s.Here && r.PID == os.Getpid()
				if !r.Since.IsZero() {
					s.Since, s.AgeSecs = r.Since, now.Sub(r.Since).Seconds()
				}
			}
		}
		switch s.State {
		case StateHeld:
			st.Active++
			if s.PID > 0 {
				st.PIDs = append(st.PIDs, s.PID)
			}
		case StateStale:
			st.Stale++
		}
		if id < max && (s.State == StateFree || s.State == StateStale) {
			st.Free++
		}
		st.Slots = append(st.Slots, s)
	}
	if exists {
		live, dead, err := p.waiters(slotfile.Look)
		if err != nil {
			return Status{}, err
		}
		st.Waiting, st.DeadWaiters = live, dead
		if st.Throttle = p.throttleStatus(max); st.Throttle != nil {
			st.Limit = st.Throttle.Limit
		}
	}
	st.OtherMaxes = otherMaxes(st)
	return st, nil
}

// otherMaxes lists the max values of live holders and waiters but st.Max.
func otherMaxes(st Status) []int {
	out := []int{}
	for _, s := range st.Slots {
		if s.State == StateHeld && s.Max > 0 && s.Max != st.Max {
			out = append(out, s.Max)
		}
	}
	for _, w := range st.Waiting {
		if w.Max > 0 && w.Max != st.Max {
			out = append(out, w.Max)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// WaiterStatus describes one waiting process, in queue order.
type WaiterStatus struct {
	Position   int       `json:"position"` // 1 for the head of the queue
	PID        int       `json:"pid"`
	Host       string    `json:"host"`
	Since      time.Time `json:"since,omitzero"` // when the waiter joined the queue
	WaitedSecs float64   `json:"waited_secs"`
	Label      string    `json:"label"`
	Command    string    `json:"command"`
	Path       string    `json:"path"`
	Max        int       `json:"max,omitempty"` // the max the waiter asked with; 0 when unknown
}

// waiters lists live waiters in order, and dead tickets (removed with Remove).
func (p *Pool) waiters(mode slotfile.Mode) (live, dead []WaiterStatus, err error) {
	all, err := p.line().Waiters(mode)
	if err != nil {
		return nil, nil, err
	}
	live, dead = []WaiterStatus{}, []WaiterStatus{}
	now := time.Now()
	for _, w := range all {
		r := w.Rec
		ws := WaiterStatus{PID: r.PID, Host: r.Host, Label: r.Label, Command: r.Command, Path: w.Path, Max: r.Max}
		if !r.Since.IsZero() {
			ws.Since, ws.WaitedSecs = r.Since, now.Sub(r.Since).Seconds()
		}
		if w.Live {
			ws.Position = len(live) + 1
			live = append(live, ws)
		} else {
			dead = append(dead, ws)
		}
	}
	return live, dead, nil
}

// RemoveDeadWaiters removes the tickets of waiters that died while waiting
// and returns their pids (0 where none was recorded), and what a group
// member that died while making a file left. The line never needs it (the
// waiter behind a dead ticket removes it): it is for tidy directories.
func (p *Pool) RemoveDeadWaiters() ([]int, error) {
	if err := p.usable(); err != nil {
		return nil, err
	}
	if exists, err := p.group.maker().Inspect(p.dir, EnvDir); err != nil || !exists {
		return []int{}, err
	}
	_, dead, err := p.waiters(slotfile.Remove)
	if err != nil {
		return nil, err
	}
	slotfile.Sweep(p.dir)
	slotfile.Sweep(p.line().Dir)
	pids := []int{}
	for _, d := range dead {
		pids = append(pids, d.PID)
	}
	return pids, nil
}

// warnOtherMax warns, once per pool and process, when a holder or waiter
// recorded a max other than max (each process enforces its own). It reads
// records only, at the first wait, where a look costs nothing.
func (p *Pool) warnOtherMax(max int) {
	if p.maxChecked.Swap(true) {
		return
	}
	var paths []string
	entries, _ := os.ReadDir(p.dir)
	for _, e := range entries {
		if slotfile.ParseSlotName(e.Name()) >= 0 {
			paths = append(paths, filepath.Join(p.dir, e.Name()))
		}
	}
	waiters, _ := p.line().Waiters(slotfile.Look)
	for _, w := range waiters {
		if w.Live {
			paths = append(paths, w.Path)
		}
	}
	for _, path := range paths {
		if rec, err := slotfile.ReadRecord(path); err == nil && rec.Max > 0 && rec.Max != max {
			p.log().Warn("llmslots: processes use this pool with different max values; each enforces its own",
				"dir", p.dir, "max", max, "other_max", rec.Max, "other_pid", rec.PID, "file", filepath.Base(path))
			return
		}
	}
}
