package llmslots

import (
	"os"
	"slices"
	"time"

	"github.com/llmslots/llmslots/internal/slotfile"
)

// progressEvery is how often a waiting acquire looks whether its
// progress changed: a caller's progress function runs at most this often.
const progressEvery = 250 * time.Millisecond

// Progress describes an acquire that waits, for callers that show it
// ("waiting for a codex slot: 3 ahead, held by ...").
type Progress struct {
	Dir     string        // the pool's directory
	Label   string        // the pool's label (WithLabel): which job waits
	Max     int           // the max the caller asked with
	Ahead   int           // the waiters ahead of this one in the queue
	Holders []Holder      // the slots' recorded holders, by slot; Self marks this very process
	Waited  time.Duration // how long the acquire has waited so far
	Limit   int           // the effective limit: Max, unless throttle reports lowered it
	// PausedUntil is when the pool's pause ends, after a throttle report or
	// a pause by hand; zero when no pause is on. No slot is granted before it.
	PausedUntil time.Time
	Throttle    *ThrottleStatus // the pool's throttling state (see Status.Throttle); nil if none
}

// WithProgress makes the pool call fn while an acquire waits: at the start,
// then when the waiters ahead or the holders change, at most four times a
// second. fn runs on a goroutine of its own, never after the acquire has
// returned, and should be quick; it reads records without any lock.
func WithProgress(fn func(Progress)) Option {
	return func(p *Pool) error {
		p.progress = fn
		return nil
	}
}

// watchProgress calls p.progress while the acquire holding ticket waits,
// until the returned function is called, which returns once it is done.
func (p *Pool) watchProgress(max int, started time.Time, ticket string) (stop func()) {
	if p.progress == nil {
		return func() {}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		var last *Progress
		for {
			pr := p.readProgress(max, ticket)
			pr.Waited = time.Since(started)
			if last == nil || pr.Ahead != last.Ahead || !slices.Equal(pr.Holders, last.Holders) ||
				pr.Limit != last.Limit || !pr.PausedUntil.Equal(last.PausedUntil) {
				p.progress(pr)
				last = &pr
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// readProgress reads the holders' records and counts who is ahead of ticket.
func (p *Pool) readProgress(max int, ticket string) Progress {
	pr := Progress{Dir: p.dir, Label: p.label, Max: max, Limit: max}
	pr.Holders, _ = p.recordedHolders(max)
	if pr.Throttle = p.throttleStatus(max); pr.Throttle != nil {
		pr.Limit, pr.PausedUntil = pr.Throttle.Limit, pr.Throttle.PausedUntil
	}
	pr.Ahead = p.line().Ahead(ticket)
	return pr
}

// recordedHolders reads the records of slots 0..max-1, taking no lock: the
// holders they name, and the slot paths that hold what llmslots never makes.
func (p *Pool) recordedHolders(max int) (holders []Holder, unusable []UnusableSlot) {
	me := slotfile.Self()
	for id := range max {
		path := slotfile.SlotPath(p.dir, id)
		fi, err := os.Lstat(path)
		switch {
		case err != nil:
		case !fi.Mode().IsRegular():
			unusable = append(unusable, UnusableSlot{SlotID: id, Path: path, What: slotfile.Describe(fi)})
		default:
			if rec, err := slotfile.ReadRecord(path); err == nil && rec.PID > 0 {
				holders = append(holders, Holder{
					SlotID: id, PID: rec.PID, Host: rec.Host, Label: rec.Label, Command: rec.Command,
					Self: rec.PID == me.PID && rec.Host == me.Host && rec.PidNS == me.PidNS,
				})
			}
		}
	}
	return holders, unusable
}
