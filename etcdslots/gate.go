package etcdslots

import (
	"encoding/json"
	"time"

	"github.com/llmslots/llmslots/internal/throttle"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A verdict is the throttle's answer to a grant at the head of the line,
// judged from one snapshot of the slots and the throttle.
type verdict struct {
	ok    bool
	until time.Time // not ok: look again then (the ramp's next grant); zero: when a key changes
	mod   int64     // the state's mod revision, which the claim compares
	write []byte    // the state the claim writes; nil: none
	ramp  bool      // the claim is a grant of the ramp
	seen  bool      // a state existed: the guard's release may raise the limit
}

// look reads the slots and the throttle at one revision.
func (a *attempt) look() (map[int]bool, thView, error) {
	ops := append([]clientv3.Op{clientv3.OpGet(a.p.slotsPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())}, a.p.throttleOps()...)
	resp, err := a.p.cli.Txn(a.ctx).Then(ops...).Commit()
	if err = a.note(err); err != nil {
		return nil, thView{}, err
	}
	slots := resp.Responses[0].GetResponseRange()
	used := make(map[int]bool, len(slots.Kvs))
	for _, kv := range slots.Kvs {
		used[a.p.slotID(string(kv.Key))] = true
	}
	return used, a.p.view(resp.Responses[1].GetResponseRange().Kvs, resp.Responses[2].GetResponseRange().Kvs, time.Now()), nil
}

// judge decides a grant as the host pool's gate does: none while the
// pause key lives, none before the ramp's next grant, none while the
// holders (the slot keys below the span, counted by etcd) reach the
// effective limit. A grant that the state could refuse writes the state
// in the claim's transaction, which compares its mod revision, so two
// grants judged from one snapshot cannot both commit: the limit holds
// across hosts without a lock.
func (a *attempt) judge(used map[int]bool, v thView, now time.Time) verdict {
	vd := verdict{mod: v.mod, seen: v.st != nil}
	if v.paused {
		return vd // the pause key's deletion (a watch event) ends it
	}
	st := v.st
	if st != nil && v.raw.PauseLease != 0 && v.raw.RampGrants >= throttle.Effective(st, a.max) {
		ended := *st
		ended.PauseUntil = time.Time{} // the ramp had its grants
		st = &ended
	}
	if !throttle.Restrictive(st, a.max, now) {
		vd.ok = true
		return vd
	}
	if next := throttle.NextGrant(st, a.max, now); now.Before(next) {
		vd.until = next
		return vd
	}
	span, holders := throttle.Span(st, a.max), 0
	for id := range used {
		if id >= 0 && id < span {
			holders++
		}
	}
	if holders >= throttle.Effective(st, a.max) {
		return vd // a release (a slot key deleted, the state raised) wakes the head
	}
	next, ramp := throttle.Granted(st, a.max, now)
	if !ramp {
		next = *st
	}
	s := encode(v, next, now, 0, 0)
	if !ramp && !v.paused && s.PauseLease != 0 {
		s.Pause, s.PauseLease, s.Spacing, s.LastGrant, s.RampGrants = 0, 0, 0, 0, 0 // the ramp is over
	}
	vd.ok, vd.ramp = true, ramp
	vd.write, _ = json.Marshal(s)
	return vd
}

// watchThrottle watches the throttle's keys, puts and deletes: a raised
// limit, a resume, the pause key deleted by the server.
func (a *attempt) watchThrottle() (*deletes, error) {
	return a.watch(a.p.throttlePrefix(), true, true)
}

// waitGate waits, at the head held back by the throttle, for anything
// that could let it through: a slot freed (d), the throttle changed or the
// pause's end (tw), the ramp's next grant (until); or for the caller's
// deadline. No timer runs while the pause key lives: its deletion is an
// event, so an idle head costs nothing however long the pause.
func (a *attempt) waitGate(d, tw *deletes, until time.Time) error {
	var next, end <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		next = t.C
	}
	if !a.waitEnd.IsZero() {
		t := time.NewTimer(time.Until(a.waitEnd))
		defer t.Stop()
		end = t.C
	}
	select {
	case <-next:
		return nil
	case <-end:
		return errBusy
	case <-a.lease.lost:
		return a.leaseGone()
	case <-a.ctx.Done():
		return a.ctx.Err()
	case wr, ok := <-d.ch:
		return a.broken(wr, ok)
	case wr, ok := <-tw.ch:
		return a.broken(wr, ok)
	}
}
