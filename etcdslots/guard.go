package etcdslots

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A Guard is a held slot. Its lease is renewed until Release.
type Guard struct {
	p     *Pool
	id    int
	key   string
	token int64
	since time.Time
	lease *lease

	max        int         // the max it was acquired with
	underState bool        // the pool had a throttle state at the grant
	reported   atomic.Bool // Throttled was called: its release raises nothing

	stopWatch context.CancelFunc
	watchDone chan struct{}

	releaseOnce sync.Once
	releaseErr  error
}

func newGuard(p *Pool, id int, key string, token int64, l *lease) *Guard {
	g := &Guard{p: p, id: id, key: key, token: token, since: time.Now(), lease: l, watchDone: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	g.stopWatch = cancel
	go g.watch(ctx)
	return g
}

// watch declares the slot lost if its key is deleted while held (its lease
// revoked by someone else, or the key removed by hand).
func (g *Guard) watch(ctx context.Context) {
	defer close(g.watchDone)
	rev := g.token + 1
	for ctx.Err() == nil {
		wch := g.p.cli.Watch(ctx, g.key, clientv3.WithRev(rev), clientv3.WithFilterPut())
		for wr := range wch {
			if wr.CompactRevision != 0 {
				// History up to rev was compacted away: ask whether the
				// key is still ours, and watch on from now.
				resp, err := g.p.cli.Get(ctx, g.key)
				if err == nil {
					if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != g.token {
						g.lease.fail(fmt.Errorf("%w: slot key %s is no longer this holder's", ErrLeaseLost, g.key))
						return
					}
					rev = resp.Header.Revision + 1
				}
				break
			}
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete {
					g.lease.fail(fmt.Errorf("%w: slot key %s was deleted at revision %d", ErrLeaseLost, g.key, ev.Kv.ModRevision))
					return
				}
			}
			rev = wr.Header.Revision + 1
		}
		select {
		case <-ctx.Done():
			return
		case <-g.lease.lost:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// SlotID returns the slot's id, 0..max-1.
func (g *Guard) SlotID() int { return g.id }

// Key returns the slot's etcd key.
func (g *Guard) Key() string { return g.key }

// Token returns the fencing token: the etcd revision of the transaction
// that granted the slot. Every later grant in the cluster has a larger
// token, also after etcd restarts, so a resource that keeps the largest
// token it has seen can refuse the writes of a holder that lost its slot.
func (g *Guard) Token() int64 { return g.token }

// AcquiredAt returns when the slot was granted, by this process's clock.
func (g *Guard) AcquiredAt() time.Time { return g.since }

// Lost returns a channel closed when the slot may be lost: when the safe
// deadline passes without an acknowledged renewal (before the server could
// grant the slot to anyone else, by the margin; see the package doc), when
// the server says the lease is gone, or when the slot key is deleted. It is
// also closed by Release. A caller that must not run past its slot stops
// its work when it is closed; Err says why.
func (g *Guard) Lost() <-chan struct{} { return g.lease.lost }

// Err returns nil while the slot is held; once Lost is closed, an error
// matching ErrLeaseLost that says why (or that the guard was released).
func (g *Guard) Err() error { return g.lease.Err() }

// Deadline returns the safe deadline: the instant Lost closes unless a
// renewal is acknowledged first.
func (g *Guard) Deadline() time.Time {
	g.lease.mu.Lock()
	defer g.lease.mu.Unlock()
	return g.lease.deadline
}

// Release gives the slot back at once by revoking its lease, which deletes
// the slot key and wakes the head of the line. When the cluster cannot be
// reached within a second it returns an error, and the slot frees when the
// lease expires (within the TTL), since renewals have stopped; until then
// Release keeps trying to revoke it in the background, so that a cluster
// that was electing a leader frees the slot as soon as it can. Later calls
// return the first call's result.
func (g *Guard) Release() error {
	g.releaseOnce.Do(func() {
		g.lease.fail(fmt.Errorf("%w: released", ErrLeaseLost))
		g.stopWatch()
		<-g.watchDone
		g.releaseErr = g.lease.revoke(time.Second)
		if g.releaseErr != nil {
			go g.lease.revokeLater()
		}
		if g.underState && !g.reported.Load() && g.releaseErr == nil { // not when the cluster did not answer
			g.p.released(g.max) // work that was not throttled raises the limit
		}
	})
	return g.releaseErr
}
