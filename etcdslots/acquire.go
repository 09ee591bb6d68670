package etcdslots

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Acquire takes a slot among the pool's first max, waiting up to wait for
// one. Waiters from every host are served in the order they arrived (their
// waiter keys' create revisions). With wait 0 it makes one attempt; an
// attempt whose caller gives it less takes up to a second to reach the
// cluster. On success the caller must call Release on the returned Guard,
// and should stop its work when Guard.Lost is closed.
//
// When no slot frees within wait it returns an error matching
// llmslots.ErrBusy naming the holders. When the cluster does not answer
// (unreachable, no quorum, a failing TLS handshake) the error matches
// ErrUnavailable; when it refuses (credentials, permissions) the error is
// the client's, at once. A waiter whose own lease lapsed while it waited
// (paused, or cut off from the cluster) gets an error matching
// ErrLeaseLost. max outside 1..1024 or a negative wait gives an
// error matching llmslots.ErrInvalid. On any error no slot is held, and
// the caller's place in line is given up (or, if the cluster cannot be
// told, expires with its lease).
func (p *Pool) Acquire(max int, wait time.Duration) (*Guard, error) {
	if wait < 0 {
		return nil, invalidf("wait must be >= 0, got %v", wait)
	}
	return p.acquire(context.Background(), max, time.Now().Add(wait), wait)
}

// AcquireContext is Acquire waiting until ctx is done. When ctx is done
// before a slot frees it returns an error that wraps ctx.Err(), as the
// core's AcquireContext does; it also matches ErrUnavailable when the
// cluster was not answering. If ctx is already done it makes one attempt,
// as Acquire with wait 0 does, and may succeed.
func (p *Pool) AcquireContext(ctx context.Context, max int) (*Guard, error) {
	if ctx == nil {
		return nil, invalidf("AcquireContext needs a non-nil context; use context.Background()")
	}
	return p.acquire(ctx, max, time.Time{}, 0)
}

// attempt is one acquire: its lease, its place in line, its limits.
type attempt struct {
	p        *Pool
	max      int
	ctx      context.Context // bounds every request and wait
	once     bool            // no time to wait: fail rather than wait
	wait     time.Duration   // for messages
	lease    *lease
	key      string // waiter key
	rev      int64  // its create revision
	rec      []byte
	waitEnd  time.Time // the caller's deadline for waiting in line; zero: ctx's
	lastErr  error     // the last request error, for the unavailable message
	answered bool      // the cluster answered the last request
}

func (p *Pool) acquire(ctx context.Context, max int, deadline time.Time, wait time.Duration) (*Guard, error) {
	if err := checkMax(max); err != nil {
		return nil, err
	}
	start := time.Now()
	a := &attempt{p: p, max: max, wait: wait}
	var cancel context.CancelFunc
	switch {
	case ctx.Err() != nil:
		// Done already: one attempt, as with wait 0.
		a.ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), minAttempt)
		a.once = true
	case !deadline.IsZero():
		a.once = wait == 0
		a.waitEnd = deadline
		a.ctx, cancel = context.WithDeadline(ctx, maxTime(deadline, start.Add(minAttempt)))
	default:
		a.ctx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	g, err := a.run()
	if err == nil {
		return g, nil
	}
	if a.lease != nil {
		timeout := 500 * time.Millisecond
		if !a.answered {
			timeout = 100 * time.Millisecond // the cluster is not answering: do not add to the caller's wait
		}
		_ = a.lease.revoke(timeout)
	}
	return nil, a.explain(ctx, err)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Internal markers: the line did not move in time; the cluster refused.
var (
	errBusy    = errors.New("busy")
	errRefused = errors.New("refused")
)

func (a *attempt) run() (*Guard, error) {
	var err error
	a.lease, err = a.p.grantLease(a.ctx)
	if err = a.note(err); err != nil {
		return nil, err
	}
	a.key = a.p.waiterKey(a.lease.id)
	since := time.Now()
	a.rec = newRecord(a.p.label, since)
	put, err := a.p.cli.Put(a.ctx, a.key, string(a.rec), clientv3.WithLease(a.lease.id))
	if err = a.note(err); err != nil {
		return nil, err
	}
	a.rev = put.Header.Revision
	// The slot record says since the grant; the line's order is a.rev.
	for {
		// Not WithKeysOnly: etcd then leaves out the lease.
		ahead, err := a.p.cli.Get(a.ctx, a.p.waitersPrefix(), append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(a.rev-1))...)
		if err = a.note(err); err != nil {
			return nil, err
		}
		if len(ahead.Kvs) == 0 {
			return a.atHead()
		}
		if ahead.Kvs[0].Lease == 0 {
			if err := a.removeLeaseless(ahead.Kvs[0]); err != nil {
				return nil, err
			}
			continue
		}
		if a.once {
			return nil, errBusy
		}
		// Wait for the one just ahead to leave: granted, gone or dead.
		pred := string(ahead.Kvs[0].Key)
		d, err := a.watchDeletes(pred, false)
		if errors.Is(err, errWatch) {
			continue
		}
		if err != nil {
			return nil, err
		}
		still, err := a.p.cli.Get(a.ctx, pred, clientv3.WithCountOnly())
		if err = a.note(err); err == nil && still.Count > 0 {
			_, err = d.wait()
		}
		d.cancel()
		if err != nil && !errors.Is(err, errWatch) {
			return nil, err
		}
	}
}

// atHead claims a free slot among the first max, or waits for one to be
// deleted. Only the head of the line watches the slots, so a release wakes
// one process.
func (a *attempt) atHead() (*Guard, error) {
	var d, tw *deletes // tw: the throttle's keys, once it holds the head back
	defer func() {
		for _, w := range []*deletes{d, tw} {
			if w != nil {
				w.cancel()
			}
		}
	}()
	for {
		if d == nil && !a.once {
			var err error
			if d, err = a.watchDeletes(a.p.slotsPrefix(), true); errors.Is(err, errWatch) {
				continue
			} else if err != nil {
				return nil, err
			}
		}
		used, th, err := a.look()
		if err != nil {
			return nil, err
		}
		vd := a.judge(used, th, time.Now())
		if !vd.ok {
			if a.once {
				return nil, errBusy
			}
			if tw == nil {
				// Opened before the next look, as d is: nothing between is missed.
				if tw, err = a.watchThrottle(); err != nil && !errors.Is(err, errWatch) {
					return nil, err
				}
				continue
			}
			if err := a.waitGate(d, tw, vd.until); errors.Is(err, errWatch) {
				d.cancel()
				tw.cancel()
				d, tw = nil, nil
			} else if err != nil {
				return nil, err
			}
			continue
		}
		free := -1
		for id := range a.max {
			if !used[id] {
				free = id
				break
			}
		}
		if free >= 0 {
			g, err := a.claim(free, vd)
			if g != nil || err != nil {
				return g, err
			}
			continue // taken by someone with a larger max, or the throttle changed: look again
		}
		// Every slot has a key. One without a lease would never go; look
		// for such keys (reading the leases costs more than the keys,
		// so only now) and take the slot of one removed.
		removed, err := a.removeLeaselessSlots()
		if err != nil {
			return nil, err
		}
		if removed {
			continue
		}
		if a.once {
			return nil, errBusy
		}
		key, err := d.wait()
		if errors.Is(err, errWatch) {
			d.cancel()
			d = nil
			continue
		}
		if err != nil {
			return nil, err
		}
		if id := a.p.slotID(key); id >= 0 && id < a.max && vd.write == nil {
			// The usual handoff: take the slot just freed without reading
			// the others first. The state could not refuse it at the look,
			// and the claim fails if the state changed since.
			if g, err := a.claim(id, vd); g != nil || err != nil {
				return g, err
			}
		}
	}
}

// claim takes slot id if it is absent and this waiter is still in line,
// in one transaction that also leaves the line (waking the next waiter).
// nil, nil: the slot was taken first.
func (a *attempt) claim(id int, vd verdict) (*Guard, error) {
	key := a.p.slotKey(id)
	then := []clientv3.Op{clientv3.OpPut(key, string(newRecord(a.p.label, time.Now())), clientv3.WithLease(a.lease.id)), clientv3.OpDelete(a.key)}
	if vd.write != nil {
		then = append(then, clientv3.OpPut(a.p.stateKey(), string(vd.write)))
	}
	resp, err := a.p.cli.Txn(a.ctx).
		If(clientv3.Compare(clientv3.CreateRevision(a.key), "=", a.rev),
			clientv3.Compare(clientv3.CreateRevision(key), "=", 0),
			clientv3.Compare(clientv3.ModRevision(a.p.stateKey()), "=", vd.mod)).
		Then(then...).
		Else(clientv3.OpGet(a.key, clientv3.WithKeysOnly())).
		Commit()
	if err = a.note(err); err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		if len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
			return nil, a.leaseGone()
		}
		return nil, nil
	}
	select {
	case <-a.lease.lost:
		// Granted on a lease this process can no longer vouch for: the
		// caller could not keep it. Give it back (acquire revokes).
		return nil, a.leaseGone()
	default:
	}
	if vd.ramp {
		a.p.seen.granted(resp.Header.Revision, time.Now())
	}
	g := newGuard(a.p, id, key, resp.Header.Revision, a.lease)
	g.max, g.underState = a.max, vd.seen
	return g, nil
}

// removeLeaseless deletes kv, a key under the pool's prefix that has no
// lease, if it is still the same. No etcdslots process writes such a key
// (etcdctl put does; so does make-mirror, which copies keys without their
// leases), and the server never deletes it: left alone, a slot key of
// that kind would block its slot for good, and a waiter key the line
// behind it. The transaction compares the key's lease and revision, so a
// key put back under a lease since the read is left alone.
func (a *attempt) removeLeaseless(kv *mvccpb.KeyValue) error {
	key := string(kv.Key)
	_, err := a.p.cli.Txn(a.ctx).
		If(clientv3.Compare(clientv3.LeaseValue(key), "=", clientv3.NoLease),
			clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
		Then(clientv3.OpDelete(key)).
		Commit()
	return a.note(err)
}

// removeLeaselessSlots removes the lease-less keys of slots 0..max-1 and
// reports whether there were any.
func (a *attempt) removeLeaselessSlots() (bool, error) {
	resp, err := a.p.cli.Get(a.ctx, a.p.slotsPrefix(), clientv3.WithPrefix())
	if err = a.note(err); err != nil {
		return false, err
	}
	removed := false
	for _, kv := range resp.Kvs {
		if id := a.p.slotID(string(kv.Key)); id >= 0 && id < a.max && kv.Lease == 0 {
			if err := a.removeLeaseless(kv); err != nil {
				return false, err
			}
			removed = true
		}
	}
	return removed, nil
}
