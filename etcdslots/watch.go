package etcdslots

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A deletes is a watch for deletions, opened before the read it follows.
//
// Why before: a watch that starts at a past revision (WithRev) is one the
// server must catch up, and etcd catches up such watches only every 100 ms,
// so a release landing in that window would reach the waiter up to 100 ms
// late (etcd's watchResyncPeriod). A watch from the current revision is
// served at once; opening it first and reading after its creation is
// confirmed misses nothing (a deletion between the two is both read and
// delivered, and costs one extra look).
type deletes struct {
	a      *attempt
	ch     clientv3.WatchChan
	cancel context.CancelFunc
}

// errWatch is an internal marker: the watch broke (no leader, a
// compaction, a closed client); open another and read again.
var errWatch = errors.New("watch broken")

func (a *attempt) watchDeletes(key string, prefix bool) (*deletes, error) {
	return a.watch(key, prefix, false)
}

// watch opens a watch of key (a prefix if prefix), of its deletions, and
// of its puts too if puts.
func (a *attempt) watch(key string, prefix, puts bool) (*deletes, error) {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(a.ctx))
	opts := []clientv3.OpOption{clientv3.WithCreatedNotify()}
	if !puts {
		opts = append(opts, clientv3.WithFilterPut())
	}
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	d := &deletes{a: a, ch: a.p.cli.Watch(ctx, key, opts...), cancel: cancel}
	for {
		_, created, err := d.next()
		if err != nil {
			cancel()
			return nil, err
		}
		if created {
			return d, nil
		}
	}
}

// wait waits for a deletion and returns the deleted key.
func (d *deletes) wait() (string, error) {
	for {
		key, created, err := d.next()
		if err != nil || (!created && key != "") {
			return key, err
		}
	}
}

// next returns the first deleted key of the next response, or created for
// the response that confirms the watch.
func (d *deletes) next() (key string, created bool, err error) {
	a := d.a
	var timeout <-chan time.Time
	if !a.waitEnd.IsZero() {
		t := time.NewTimer(time.Until(a.waitEnd))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return "", false, errBusy
	case <-a.lease.lost:
		return "", false, a.leaseGone()
	case <-a.ctx.Done():
		return "", false, a.ctx.Err()
	case wr, ok := <-d.ch:
		if err := a.broken(wr, ok); err != nil {
			return "", false, err
		}
		if wr.Created {
			return "", true, nil
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypeDelete {
				return string(ev.Kv.Key), false, nil
			}
		}
		return "", false, nil
	}
}

// broken returns errWatch, after a breath, if a watch's response says it
// broke; nil if it is a response like any other.
func (a *attempt) broken(wr clientv3.WatchResponse, ok bool) error {
	if ok && !wr.Canceled && wr.Err() == nil {
		return nil
	}
	if ok && wr.Err() != nil {
		a.lastErr = wr.Err()
	}
	// After a breath, so that a cluster without a leader is not spun on.
	select {
	case <-time.After(100 * time.Millisecond):
	case <-a.ctx.Done():
		return a.ctx.Err()
	}
	return errWatch
}
