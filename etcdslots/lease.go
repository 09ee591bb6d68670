package etcdslots

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A lease is one acquirer's etcd lease, renewed by its own loop rather than
// the client's KeepAlive, because the loop must know when it sent each
// renewal: the safe deadline is the send time of the last acknowledged
// renewal plus the TTL minus the margin. The server received that renewal
// after it was sent, so it cannot expire the lease before send+TTL.
type lease struct {
	cli    *clientv3.Client
	id     clientv3.LeaseID
	ttl    time.Duration // as granted
	margin time.Duration

	lost     chan struct{}
	lostOnce sync.Once
	mu       sync.Mutex
	err      error     // why lost
	deadline time.Time // safe deadline
	acked    time.Time // when the last acknowledged renewal was sent
	timer    *time.Timer

	cancel context.CancelFunc
	done   chan struct{}
}

// grantLease grants a lease and starts renewing it.
func (p *Pool) grantLease(ctx context.Context) (*lease, error) {
	sent := time.Now()
	resp, err := p.cli.Grant(ctx, int64((p.ttl+time.Second-1)/time.Second))
	if err != nil {
		return nil, err
	}
	l := &lease{
		cli:    p.cli,
		id:     resp.ID,
		ttl:    time.Duration(resp.TTL) * time.Second,
		margin: p.margin,
		lost:   make(chan struct{}),
		done:   make(chan struct{}),
		acked:  sent,
	}
	l.deadline = sent.Add(l.ttl - l.margin)
	l.timer = time.AfterFunc(time.Until(l.deadline), l.lapsed)
	rctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.renew(rctx)
	return l, nil
}

// lapsed runs at the safe deadline, unless a renewal moved it.
func (l *lease) lapsed() {
	l.mu.Lock()
	d, acked := l.deadline, l.acked
	l.mu.Unlock()
	if time.Now().Before(d) {
		return // a renewal moved the deadline after the timer fired
	}
	l.fail(fmt.Errorf("%w: no renewal of lease %x acknowledged since the one sent at %s; with TTL %v the server may expire it from %s on",
		ErrLeaseLost, int64(l.id), acked.Format("15:04:05.000"), l.ttl, acked.Add(l.ttl).Format("15:04:05.000")))
}

// fail declares the lease lost; the first reason stays.
func (l *lease) fail(err error) {
	l.lostOnce.Do(func() {
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		close(l.lost)
	})
}

func (l *lease) lastAck() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked
}

// Err says why the lease was declared lost; nil while it is not.
func (l *lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *lease) renew(ctx context.Context) {
	defer close(l.done)
	interval := l.ttl / 4
	next := time.NewTimer(interval)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.lost:
			return
		case <-next.C:
		}
		l.mu.Lock()
		deadline := l.deadline
		l.mu.Unlock()
		// A renewal acknowledged after the safe deadline cannot undo a
		// loss already reported, so it need not wait longer.
		rctx, cancel := context.WithDeadline(ctx, deadline)
		sent := time.Now()
		resp, err := l.cli.KeepAliveOnce(rctx, l.id)
		cancel()
		switch {
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			l.fail(fmt.Errorf("%w: the server says lease %x has expired or was revoked", ErrLeaseLost, int64(l.id)))
			return
		case err != nil:
			// Not reachable now: try again soon; lapsed reports the loss
			// if no renewal gets through in time.
			next.Reset(min(interval, 100*time.Millisecond))
			continue
		}
		d := sent.Add(time.Duration(resp.TTL)*time.Second - l.margin)
		l.mu.Lock()
		if d.After(l.deadline) && time.Now().Before(l.deadline) {
			l.deadline, l.acked = d, sent
			l.timer.Reset(time.Until(d))
		}
		l.mu.Unlock()
		next.Reset(interval)
	}
}

// stop ends the renewals (and the safe-deadline timer) and waits for the
// loop to exit. The lease itself stays until revoked or expired.
func (l *lease) stop() {
	l.cancel()
	l.timer.Stop()
	<-l.done
}

// revoke stops renewing and revokes the lease, deleting its keys at once.
// When the cluster does not answer within timeout the lease expires on its
// own within the TTL.
func (l *lease) revoke(timeout time.Duration) error {
	l.stop()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := l.cli.Revoke(ctx, l.id)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("etcdslots: revoking lease %x: %w (its keys go when it expires, within %v)", int64(l.id), err, l.ttl)
	}
	return nil
}

// revokeLater keeps trying to revoke the lease until it would have expired
// anyway.
func (l *lease) revokeLater() {
	l.mu.Lock()
	end := l.acked.Add(l.ttl)
	l.mu.Unlock()
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	for ctx.Err() == nil {
		rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := l.cli.Revoke(rctx, l.id)
		rcancel()
		if err == nil || errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
