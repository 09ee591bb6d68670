package etcdslots

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/llmslots/llmslots"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// noLease is the Detail of a slot key without a lease.
const noLease = "no lease: no etcdslots process wrote it, and the server never deletes it; the next Acquire that finds every slot taken removes it"

// ReadStatus reports slots 0..max-1 and any slot key beyond, with their
// holders' records, and the waiters in the order they will be served, as
// the core's Status does for a directory. Dir is etcd://<prefix>/<name>;
// each entry's Path is its key. An entry whose lease has expired but whose
// key the server has not yet deleted (it does so within about half a
// second, or once a leader is elected) is reported stale, or as a dead
// waiter. So is a key without a lease, with a Detail saying so: no
// etcdslots process writes one (etcdctl put and make-mirror do), the server
// never deletes it, and Acquire removes it when it would otherwise wait on
// it. Throttle is the throttle's state (Guard.Throttled, Pause): the
// effective limit, also in Limit; the pause's end, by the server's clock
// to the second; the last report. ReadStatus changes nothing. The status
// is a snapshot of one revision.
func (p *Pool) ReadStatus(ctx context.Context, max int) (llmslots.Status, error) {
	if ctx == nil {
		return llmslots.Status{}, invalidf("ReadStatus needs a non-nil context; use context.Background()")
	}
	if err := checkMax(max); err != nil {
		return llmslots.Status{}, err
	}
	resp, err := p.cli.Txn(ctx).Then(append([]clientv3.Op{
		clientv3.OpGet(p.slotsPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(p.waitersPrefix(), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend)),
	}, p.throttleOps()...)...).Commit()
	if err != nil {
		return llmslots.Status{}, fmt.Errorf("etcdslots: reading the status of %s from %s: %w", p.Dir(), p.endpoints(), err)
	}
	slotKVs := resp.Responses[0].GetResponseRange().Kvs
	waiterKVs := resp.Responses[1].GetResponseRange().Kvs

	// alive asks whether a lease still has time; one request per entry.
	alive := func(id int64) (bool, error) {
		if id == 0 {
			return false, nil // no lease: see noLease
		}
		ttl, err := p.cli.TimeToLive(ctx, clientv3.LeaseID(id))
		if err != nil {
			return false, fmt.Errorf("etcdslots: reading lease %x: %w", id, err)
		}
		return ttl.TTL > 0, nil
	}

	now := time.Now()
	st := llmslots.Status{Dir: p.Dir(), Max: max, Limit: max, PIDs: []int{}, Slots: []llmslots.SlotStatus{}, Waiting: []llmslots.WaiterStatus{}, DeadWaiters: []llmslots.WaiterStatus{}}
	th := p.view(resp.Responses[2].GetResponseRange().Kvs, resp.Responses[3].GetResponseRange().Kvs, now)
	if st.Throttle, err = p.throttleStatus(ctx, th, max, now); err != nil {
		return llmslots.Status{}, err
	} else if st.Throttle != nil {
		st.Limit = st.Throttle.Limit
	}
	held := map[int]llmslots.SlotStatus{}
	var beyond []int
	for _, kv := range slotKVs {
		id := p.slotID(string(kv.Key))
		if id < 0 {
			continue
		}
		r := parseRecord(kv.Value)
		s := llmslots.SlotStatus{SlotID: id, State: llmslots.StateHeld, PID: r.PID, Host: r.Host, Label: r.Label, Command: r.Command, Path: string(kv.Key)}
		if !r.Since.IsZero() {
			s.Since = r.Since
			s.AgeSecs = now.Sub(r.Since).Seconds()
		}
		ok, err := alive(kv.Lease)
		if err != nil {
			return llmslots.Status{}, err
		}
		switch {
		case kv.Lease == 0:
			s.State = llmslots.StateStale
			s.Detail = noLease
		case !ok:
			s.State = llmslots.StateStale
			s.Detail = fmt.Sprintf("lease %x has expired; the server deletes the key shortly", kv.Lease)
		}
		held[id] = s
		if id >= max {
			beyond = append(beyond, id)
		}
	}
	sort.Ints(beyond)
	ids := make([]int, 0, max+len(beyond))
	for id := range max {
		ids = append(ids, id)
	}
	for _, id := range append(ids, beyond...) {
		s, ok := held[id]
		if !ok {
			s = llmslots.SlotStatus{SlotID: id, State: llmslots.StateFree, Path: p.slotKey(id)}
		}
		switch s.State {
		case llmslots.StateHeld:
			st.Active++
			if s.PID > 0 {
				st.PIDs = append(st.PIDs, s.PID)
			}
		case llmslots.StateStale:
			st.Stale++
		}
		if id < max && s.State != llmslots.StateHeld {
			st.Free++
		}
		st.Slots = append(st.Slots, s)
	}
	for _, kv := range waiterKVs {
		r := parseRecord(kv.Value)
		w := llmslots.WaiterStatus{PID: r.PID, Host: r.Host, Label: r.Label, Command: r.Command, Path: string(kv.Key)}
		if !r.Since.IsZero() {
			w.Since = r.Since
			w.WaitedSecs = now.Sub(r.Since).Seconds()
		}
		ok, err := alive(kv.Lease)
		if err != nil {
			return llmslots.Status{}, err
		}
		if ok {
			w.Position = len(st.Waiting) + 1
			st.Waiting = append(st.Waiting, w)
		} else {
			st.DeadWaiters = append(st.DeadWaiters, w)
		}
	}
	return st, nil
}
