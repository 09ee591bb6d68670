package etcdslots

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/internal/throttle"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// note records how a request went; it returns err unchanged, or nil.
func (a *attempt) note(err error) error {
	if err == nil {
		a.answered = true
		return nil
	}
	a.answered = false
	a.lastErr = err
	if permanent(err) {
		return &sentinelError{
			msg:       fmt.Sprintf("etcdslots: the cluster at %s refused: %v", a.p.endpoints(), err),
			sentinels: []error{errRefused},
			cause:     err,
		}
	}
	if a.lease != nil {
		select {
		case <-a.lease.lost:
			return a.leaseGone()
		default:
		}
	}
	return err
}

func (a *attempt) leaseGone() error {
	err := a.lease.Err()
	if err == nil {
		err = fmt.Errorf("%w: lease %x of waiter %s ended", ErrLeaseLost, int64(a.lease.id), a.key)
	}
	return fmt.Errorf("etcdslots: waiting for a slot of %s lost the place in line: %w", a.p.Dir(), err)
}

// explain turns what ended the attempt into the error the caller gets.
func (a *attempt) explain(callerCtx context.Context, err error) error {
	if errors.Is(err, ErrLeaseLost) || errors.Is(err, errRefused) {
		return err
	}
	unavailable := !a.answered || (a.lease != nil && time.Since(a.lease.lastAck()) > a.lease.ttl/2)
	if unavailable {
		cause := a.lastErr
		if cause == nil {
			cause = err
		}
		var ctxErr error
		if callerCtx.Err() != nil {
			ctxErr = callerCtx.Err()
		} else if errors.Is(err, context.DeadlineExceeded) || errors.Is(cause, context.DeadlineExceeded) {
			ctxErr = context.DeadlineExceeded
		}
		return &sentinelError{
			msg:       fmt.Sprintf("etcdslots: the cluster at %s did not answer in time for pool %s (%v): %s", a.p.endpoints(), a.p.Dir(), cause, diagnose(a.p.cli.Endpoints())),
			sentinels: []error{ErrUnavailable},
			cause:     errors.Join(ctxErr, cause),
		}
	}
	if callerCtx.Err() != nil {
		// As the core's AcquireContext: the ctx's error, not ErrBusy.
		return fmt.Errorf("etcdslots: gave up waiting for a slot of %s (max=%d; %s): %w", a.p.Dir(), a.max, a.holders(), callerCtx.Err())
	}
	if errors.Is(err, errBusy) || errors.Is(err, context.DeadlineExceeded) {
		return &sentinelError{
			msg:       fmt.Sprintf("etcdslots: no free slot in %s within %v (max=%d); %s", a.p.Dir(), a.wait, a.max, a.holders()),
			sentinels: []error{llmslots.ErrBusy},
		}
	}
	return fmt.Errorf("etcdslots: acquiring a slot of %s: %w", a.p.Dir(), err)
}

// holders names who held the slots, as their records say, and what of
// the throttle held the line back, for the busy message; it asks the
// cluster briefly and says so when it cannot.
func (a *attempt) holders() string {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	resp, err := a.p.cli.Txn(ctx).Then(append([]clientv3.Op{clientv3.OpGet(a.p.slotsPrefix(), clientv3.WithPrefix())}, a.p.throttleOps()...)...).Commit()
	if err != nil {
		return "holders unknown"
	}
	var hs []string
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		if id := a.p.slotID(string(kv.Key)); id >= 0 && id < a.max {
			r := parseRecord(kv.Value)
			hs = append(hs, fmt.Sprintf("%d@%s", r.PID, r.Host))
		}
	}
	msg := "no holder now"
	if len(hs) > 0 {
		msg = "held by pid@host " + strings.Join(hs, ", ")
	}
	v := a.p.view(resp.Responses[1].GetResponseRange().Kvs, resp.Responses[2].GetResponseRange().Kvs, time.Now())
	if r := v.raw.Last; v.paused && r != nil && r.Kind == "pause" {
		msg += fmt.Sprintf("; paused by hand by pid %d on %s", r.PID, r.Host)
		if r.Reason != "" {
			msg += ": " + r.Reason
		}
	} else if v.paused && r != nil && r.Kind == "usage" && v.st != nil {
		msg += fmt.Sprintf("; waiting until %s for a usage limit to reset, reported by pid %d on %s: %s", v.st.PauseUntil.Format(time.DateTime), r.PID, r.Host, r.Reason)
	} else if v.paused && r != nil {
		msg += fmt.Sprintf("; paused after a throttle report by pid %d on %s", r.PID, r.Host)
	}
	if limit := throttle.Effective(v.st, a.max); limit < a.max {
		msg += fmt.Sprintf("; limit lowered to %d by throttle reports", limit)
	}
	return msg
}

// diagnose says what a quick TCP dial to each endpoint finds, so that "did
// not answer" comes with a reason: nothing listens, or something does and
// the cluster has no quorum, or TLS or credentials fail.
func diagnose(endpoints []string) string {
	res := make([]string, len(endpoints))
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hostport := ep
			if u, err := url.Parse(ep); err == nil && u.Host != "" {
				hostport = u.Host
			}
			c, err := net.DialTimeout("tcp", hostport, 150*time.Millisecond)
			if err != nil {
				res[i] = fmt.Sprintf("%s: %v", ep, err)
				return
			}
			c.Close()
			res[i] = ep + ": accepts TCP connections"
		}()
	}
	wg.Wait()
	msg := strings.Join(res, "; ")
	if strings.Contains(msg, "accepts TCP") {
		msg += " (an endpoint that accepts connections but does not answer: no quorum, or a TLS or credentials mismatch)"
	}
	return msg
}
