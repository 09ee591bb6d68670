package etcdslots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/internal/slotfile"
	"github.com/llmslots/llmslots/internal/throttle"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The cluster's throttle is the host pool's policy (internal/throttle's
// pure functions of a State) kept in one key, <pool>/throttle/state, and
// changed only by transactions that compare its mod revision. What the
// policy keeps as wall-clock instants is kept here in forms no host's
// clock can shift, so a host whose clock is minutes off pauses right:
//
//   - The pause's end is etcd's: a pause puts <pool>/throttle/pause under
//     a lease of its own whose TTL is the pause (whole seconds, at least
//     the server's minimum, about 2 s), renewed by nobody. The server
//     deletes the key when the TTL runs out, by its own clock, and a
//     grant's transaction, reading the key, sees the pause on or over.
//     The reporter may die at once: the lease is not its own.
//   - "The last decrease" is a revision, and a guard's grant its token:
//     the server's order says which came first.
//   - The ramp after the pause (grants spaced a tenth of it apart) is
//     timed by each host's monotonic clock from the moment it saw the
//     pause end or the last ramp grant: that moment comes after the
//     event, so a host can only wait longer than the spacing, never less.
//
// The pause key holds no state: it is written only in the transaction
// that writes the state, and it only ends.

// stored is the state key's value: the policy's State without instants.
type stored struct {
	Limit   float64 `json:"limit"`
	WMax    int     `json:"wmax,omitempty"`
	Ceiling int     `json:"ceiling,omitempty"`
	Backoff int     `json:"backoff,omitempty"`
	// Decreased is the revision of the write that last lowered the limit;
	// -1: this write (its mod revision).
	Decreased int64 `json:"decreased_rev,omitempty"`
	// Pause is the last pause's length and PauseLease the lease of the
	// pause key that ends it; both are cleared once its ramp is over.
	Pause      time.Duration `json:"pause_ns,omitempty"`
	PauseLease int64         `json:"pause_lease,omitempty"`
	Spacing    time.Duration `json:"spacing_ns,omitempty"`
	// LastGrant is the revision of the last grant of the ramp; -1: this
	// write. RampGrants counts them: the ramp ends after as many as the
	// limit, so a host that starts after the pause ended (each run of
	// llmslots-etcd is a new process) does not start a ramp of its own.
	LastGrant  int64                    `json:"last_grant_rev,omitempty"`
	RampGrants int                      `json:"ramp_grants,omitempty"`
	Last       *llmslots.ThrottleReport `json:"last_report,omitempty"` // At is the reporter's clock: shown, never used
}

// thView is the throttle as one read saw it.
type thView struct {
	raw    stored
	st     *throttle.State // in this host's time; nil: no state
	mod    int64           // the state key's mod revision; 0: none
	paused bool            // the pause key exists
	lease  int64           // the pause key's lease
}

// thSeen is when this process first saw what the ramp is timed from.
type thSeen struct {
	mu         sync.Mutex
	pauseLease int64
	pauseFrom  time.Time // first seen on
	pauseEnd   time.Time // first seen over
	grantRev   int64
	grantAt    time.Time
	// The policy's clocks of growth (throttle.Released): when this process
	// first saw the last decrease, and the last write of the state.
	decRev, modRev int64
	decAt, modAt   time.Time
}

// granted records a grant of the ramp this process made at revision rev.
func (s *thSeen) granted(rev int64, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grantRev, s.grantAt = rev, at
}

func (p *Pool) throttlePrefix() string { return p.base() + "throttle/" }
func (p *Pool) stateKey() string       { return p.base() + "throttle/state" }
func (p *Pool) pauseKey() string       { return p.base() + "throttle/pause" }

// throttleOps are the two reads of the throttle, for a snapshot's Txn.
func (p *Pool) throttleOps() []clientv3.Op {
	return []clientv3.Op{clientv3.OpGet(p.stateKey()), clientv3.OpGet(p.pauseKey())}
}

// revTime carries a revision where the policy wants an instant: only
// compared with another revision (a report's grant with the last decrease).
func revTime(rev int64) time.Time { return time.Unix(0, rev) }

// view reads the results of throttleOps at now. A value no etcdslots
// process wrote reads as no state, as the host pool ignores a bad file.
func (p *Pool) view(state, pause []*mvccpb.KeyValue, now time.Time) thView {
	var v thView
	if len(pause) > 0 && pause[0].Lease != 0 {
		// A pause key without a lease (etcdctl put, make-mirror) would
		// never end: it is not one of ours, and pauses nothing.
		v.paused, v.lease = true, pause[0].Lease
	}
	if len(state) == 0 || json.Unmarshal(state[0].Value, &v.raw) != nil || !(v.raw.Limit >= 1 && v.raw.Limit <= throttle.MaxLimit) {
		v.raw = stored{}
		return v
	}
	v.mod = state[0].ModRevision
	r := v.raw
	st := throttle.State{Limit: r.Limit, WMax: r.WMax, Ceiling: min(max(r.Ceiling, 0), throttle.MaxLimit), Backoff: r.Backoff, Spacing: r.Spacing}
	if r.Decreased == -1 {
		r.Decreased, v.raw.Decreased = v.mod, v.mod
	}
	st.Decreased = revTime(r.Decreased)
	if r.LastGrant == -1 {
		v.raw.LastGrant = v.mod
	}
	s := &p.seen
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.decRev != r.Decreased {
		s.decRev, s.decAt = r.Decreased, now
	}
	if s.modRev != v.mod {
		s.modRev, s.modAt = v.mod, now
	}
	if r.PauseLease != 0 {
		if s.pauseLease != r.PauseLease {
			s.pauseLease, s.pauseFrom, s.pauseEnd = r.PauseLease, now, time.Time{}
		}
		if v.paused {
			// The key's deletion ends it; this is for NextGrant and status.
			st.PauseUntil = s.pauseFrom.Add(r.Pause)
			if !st.PauseUntil.After(now) {
				st.PauseUntil = now.Add(time.Second)
			}
		} else { // the ramp: judge ends it after as many grants as the limit
			if s.pauseEnd.IsZero() {
				s.pauseEnd = now
			}
			st.PauseUntil = s.pauseEnd
		}
	}
	if v.raw.LastGrant != 0 {
		if s.grantRev != v.raw.LastGrant {
			s.grantRev, s.grantAt = v.raw.LastGrant, now
		}
		st.LastGrant = s.grantAt
	}
	v.st = &st
	return v
}

// encode is the value to store for next, the policy's answer at now to
// the state v read: instants set to now by the policy become "this write".
// pauseLease is the new pause's lease, 0 if the pause was not extended.
func encode(v thView, next throttle.State, now time.Time, pauseLease int64, pause time.Duration) stored {
	s := stored{Limit: next.Limit, WMax: next.WMax, Ceiling: next.Ceiling, Backoff: next.Backoff, Spacing: next.Spacing,
		Decreased: v.raw.Decreased, Pause: v.raw.Pause, PauseLease: v.raw.PauseLease, LastGrant: v.raw.LastGrant, RampGrants: v.raw.RampGrants}
	if next.Decreased.Equal(now) {
		s.Decreased = -1
	}
	if pauseLease != 0 {
		s.Pause, s.PauseLease, s.LastGrant, s.RampGrants = pause, pauseLease, 0, 0
	}
	if next.LastGrant.Equal(now) {
		s.LastGrant, s.RampGrants = -1, s.RampGrants+1
	}
	if r := next.Last; !r.At.IsZero() {
		tr := llmslots.ThrottleReport(r)
		s.Last = &tr
	}
	return s
}

// readThrottle reads the throttle alone.
func (p *Pool) readThrottle(ctx context.Context) (thView, error) {
	resp, err := p.cli.Txn(ctx).Then(p.throttleOps()...).Commit()
	if err != nil {
		return thView{}, err
	}
	return p.view(resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs, time.Now()), nil
}

// changeThrottle applies change to the state read afresh and writes what
// it returns, in a transaction that compares the state's mod revision: a
// change made in between is read and change applied to it again. A pause
// longer than the one on gets a lease of its own for the pause key.
func (p *Pool) changeThrottle(ctx context.Context, change func(st *throttle.State, now time.Time) (throttle.State, bool)) error {
	for {
		v, err := p.readThrottle(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		if v.paused && v.st != nil {
			// This host may have first seen the pause long after it
			// began: ask the server how long it has left, in whole
			// seconds, truncated, so a report that outlasts it always
			// gets a lease of its own and never shortens it.
			ttl, err := p.cli.TimeToLive(ctx, clientv3.LeaseID(v.lease))
			if err != nil {
				return err
			}
			v.st.PauseUntil = now.Add(time.Duration(max(ttl.TTL, 0)) * time.Second)
		}
		next, ok := change(v.st, now)
		if !ok {
			return nil
		}
		var old time.Time
		if v.st != nil {
			old = v.st.PauseUntil
		}
		then := []clientv3.Op{}
		var lease clientv3.LeaseID
		pause := next.PauseUntil.Sub(now)
		if !next.PauseUntil.Equal(old) && pause > 0 { // extended, or a pause by hand
			ttl := int64((pause + time.Second - 1) / time.Second) // whole seconds, rounded up: never shorter
			lg, err := p.cli.Grant(ctx, ttl)
			if err != nil {
				return err
			}
			lease = lg.ID
			then = append(then, clientv3.OpPut(p.pauseKey(), fmt.Sprintf("pause of %v", pause.Round(time.Millisecond)), clientv3.WithLease(lease)))
		}
		val, _ := json.Marshal(encode(v, next, now, int64(lease), pause))
		resp, err := p.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(p.stateKey()), "=", v.mod)).
			Then(append(then, clientv3.OpPut(p.stateKey(), string(val)))...).
			Commit()
		if err == nil && resp.Succeeded {
			return nil
		}
		if lease != 0 { // unused: revoked, though it would only expire
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 500*time.Millisecond)
			p.cli.Revoke(rctx, lease)
			cancel()
		}
		if err != nil {
			return err
		}
	}
}

// changeTimeout bounds a report, a pause or a resume: a change lost to a
// cluster that does not answer is reported to the caller, not waited on.
const changeTimeout = 5 * time.Second

// reporter is this process, as a report records it.
func (p *Pool) reporter(reason string) throttle.Record {
	me := slotfile.Self()
	return throttle.Record{PID: me.PID, Host: me.Host, Command: me.Command, Label: p.label, Reason: reason}
}

// Throttled reports that the work done under this slot was throttled by
// the provider (an HTTP 429); retryAfter is its hint, 0 if none. Every
// host of the pool is then slowed, as the host pool's Guard.Throttled
// slows every process: no slot is granted until the hint has passed (no
// hint: 1 s doubled per report until a release succeeds, up to 2 min,
// jittered; the cluster rounds a pause up to whole seconds and to its
// lease minimum, about 2 s), then grants come a tenth of the pause apart;
// the pool's limit is multiplied by 0.7 once per round and raised again
// by releases of work not throttled. The pause is etcd's (a lease whose
// TTL is the pause), so it holds whatever the hosts' clocks say and when
// this process dies right after. Call it where the 429 is seen, before or
// after Release; a retry acquires again, at the back of the line. It
// returns why the report could not be recorded (the cluster did not
// answer within 5 s); on a nil Guard it does nothing.
func (g *Guard) Throttled(retryAfter time.Duration) error {
	return g.report(retryAfter, "", throttle.Throttled)
}

// ReportLimit reports l, met by the work done under this slot, to every
// host of the pool, as the host pool's Guard.ReportLimit does: a
// RateLimited limit (or one of any other Kind) is Throttled(l.RetryAfter);
// a UsageLimit pauses the pool until l.ResetAt (at most 24 h ahead; none
// ahead: the backoff Throttled uses without a hint), keeps the limit, and
// Status shows it with l.Line. The reset is the provider's instant, read
// against this host's clock once; the pause then runs on the cluster's.
// It returns why the report could not be recorded.
func (g *Guard) ReportLimit(l llmslots.Limit) error {
	if l.Kind != llmslots.UsageLimit {
		return g.Throttled(l.RetryAfter)
	}
	return g.report(time.Until(l.ResetAt), l.Line, throttle.UsageLimited)
}

// report records a report by g's holder: policy is the state after it.
func (g *Guard) report(retryAfter time.Duration, reason string, policy func(*throttle.State, time.Time, throttle.Report) throttle.State) error {
	if g == nil || g.p == nil {
		return nil
	}
	g.reported.Store(true)
	r := throttle.Report{Max: g.max, Granted: revTime(g.token), RetryAfter: retryAfter, Jitter: rand.Float64(), By: g.p.reporter(reason)}
	ctx, cancel := context.WithTimeout(context.Background(), changeTimeout)
	defer cancel()
	err := g.p.changeThrottle(ctx, func(st *throttle.State, now time.Time) (throttle.State, bool) {
		return policy(st, now, r), true
	})
	if err != nil {
		return fmt.Errorf("etcdslots: the throttle report on %s was not recorded: %w", g.p.Dir(), err)
	}
	return nil
}

// Pause pauses the pool by hand for d, positive and at most 24 h: no host
// is granted a slot until d has passed, by the cluster's clock (rounded up
// to whole seconds, at least the server's lease minimum, about 2 s);
// holders keep their slots, waiters their places; the limit is kept.
// reason is recorded for status. A pause shorter than one on replaces it.
// The error says why the pause was not made (the cluster did not answer
// within 5 s, or refused).
func (p *Pool) Pause(d time.Duration, reason string) error {
	if d <= 0 || d > throttle.MaxPause {
		return invalidf("pause must be > 0 and at most %v, got %v", throttle.MaxPause, d)
	}
	if len(reason) > slotfile.MaxLabelLen || !validText(reason) {
		return invalidf("reason must be at most %d bytes of text without control characters", slotfile.MaxLabelLen)
	}
	rec := p.reporter(reason)
	ctx, cancel := context.WithTimeout(context.Background(), changeTimeout)
	defer cancel()
	err := p.changeThrottle(ctx, func(st *throttle.State, now time.Time) (throttle.State, bool) {
		return throttle.Paused(st, now, d, rec), true
	})
	if err != nil {
		return fmt.Errorf("etcdslots: pausing %s at %s: %w", p.Dir(), p.endpoints(), err)
	}
	return nil
}

// Resume ends a pause and forgets every report: the state and the pause
// keys are deleted, the limit is max again. Resuming a pool with no state
// does nothing.
func (p *Pool) Resume() error {
	ctx, cancel := context.WithTimeout(context.Background(), changeTimeout)
	defer cancel()
	resp, err := p.cli.Txn(ctx).Then(clientv3.OpGet(p.pauseKey()), clientv3.OpDelete(p.throttlePrefix(), clientv3.WithPrefix())).Commit()
	if err != nil {
		return fmt.Errorf("etcdslots: resuming %s at %s: %w", p.Dir(), p.endpoints(), err)
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 && kvs[0].Lease != 0 {
		p.cli.Revoke(ctx, clientv3.LeaseID(kvs[0].Lease)) // it would only expire
	}
	return nil
}

// validText reports whether s is UTF-8 text without control characters.
func validText(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f || r == '\uFFFD' {
			return false
		}
	}
	return true
}

// released applies throttle.Released for a guard of max that was granted
// under a state and not reported; a raise lost to a busy or unreachable
// cluster is harmless (the next release makes it), so it tries briefly.
func (p *Pool) released(max int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.changeThrottle(ctx, func(st *throttle.State, now time.Time) (throttle.State, bool) {
		if st == nil {
			return throttle.State{}, false
		}
		// The state keeps revisions, not instants: the policy's time since
		// the decrease and since the last raise are this host's, from when
		// it first saw them (later than they were: growth only slower).
		local := *st
		p.seen.mu.Lock()
		local.Decreased, local.Raised = p.seen.decAt, p.seen.modAt
		p.seen.mu.Unlock()
		next, changes := throttle.Released(&local, max, now)
		next.Decreased = st.Decreased // the revision, which rounds compare
		return next, changes
	})
}

// throttleStatus is the state for ReadStatus; nil if none. The pause's
// end is the pause lease's remaining TTL, by the server's clock, rounded
// up to the second (the server gives whole seconds).
func (p *Pool) throttleStatus(ctx context.Context, v thView, max int, now time.Time) (*llmslots.ThrottleStatus, error) {
	if v.st == nil && !v.paused {
		return nil, nil
	}
	ts := &llmslots.ThrottleStatus{Limit: throttle.Effective(v.st, max), RawLimit: v.raw.Limit, LastReport: v.raw.Last}
	if v.paused {
		ttl, err := p.cli.TimeToLive(ctx, clientv3.LeaseID(v.lease))
		if err != nil {
			return nil, fmt.Errorf("etcdslots: reading the pause's lease %x: %w", v.lease, err)
		}
		if ttl.TTL >= 0 { // -1: expired since the read
			// The server truncates to whole seconds: add one, so that a
			// pause with 0.4 s left is not shown over.
			ts.PausedUntil, ts.Spacing = now.Add(time.Duration(ttl.TTL+1)*time.Second), v.raw.Spacing
		}
	}
	return ts, nil
}

// errThrottled is an internal marker: the throttle holds the head back.
var errThrottled = errors.New("throttled")
