//go:build unix

package etcdslots_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/etcdslots/internal/etcdtest"
	"github.com/llmslots/llmslots/internal/throttle"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestThrottleHoldsOtherHosts: host A, a real process behind its own
// proxy, reports its work throttled with a hint of 3 s and is SIGKILLed at
// once; host B, behind another proxy, asks for a slot of the same pool
// (max 2, a slot free all along) and is granted one only once the pause
// is over, by the cluster's clock.
func TestThrottleHoldsOtherHosts(t *testing.T) {
	addr := sharedMember(t)
	name := poolName(t)
	const hint = 3 * time.Second
	a := startHost(t, 0, etcdtest.HostConfig{Pool: name, Max: 2, Hold: time.Hour, Rounds: 1, ReportEvery: 1, ReportHint: hint}, addr)
	rep := mustEvent(t, a, "reported", 1, 20*time.Second)
	if rep.Msg != "" {
		t.Fatalf("host A's report failed: %s", rep.Msg)
	}
	killed := a.Kill()
	st, err := namedPool(t, name, addr).ReadStatus(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if st.Throttle == nil || st.Throttle.PausedUntil.IsZero() || st.Throttle.LastReport == nil || st.Throttle.LastReport.PID != a.Cmd.Process.Pid || st.Limit != 1 {
		t.Fatalf("status after the report: limit %d, throttle %+v; want paused, limit 1 (2*0.7), reported by pid %d", st.Limit, st.Throttle, a.Cmd.Process.Pid)
	}
	b := startHost(t, 1, etcdtest.HostConfig{Pool: name, Max: 2, Hold: 10 * time.Millisecond, Rounds: 1}, addr)
	asked := mustEvent(t, b, "waiting", 1, 10*time.Second)
	got := mustEvent(t, b, "start", 1, hint+5*time.Second)
	after := got.At.Sub(rep.At)
	t.Logf("report at 0; reporter SIGKILLed at %v; host B asked at %v, granted at %v (hint %v)",
		killed.Sub(rep.At).Round(time.Millisecond), asked.At.Sub(rep.At).Round(time.Millisecond), after.Round(time.Millisecond), hint)
	if after < hint {
		t.Errorf("host B was granted a slot %v after the report, inside the %v pause", after, hint)
	}
	if after > hint+2*time.Second {
		t.Errorf("host B was granted a slot %v after the report: the %v pause ended late (whole seconds and the server's expiry scan allow 1.5 s)", after, hint)
	}
}

// TestPauseIgnoresTheWallClock: the only instant in the state is the
// last report's, shown by status and used for nothing: a state whose
// report claims a time ten minutes off either way (a host whose clock is
// wrong) pauses for the pause's length, by the server's clock.
func TestPauseIgnoresTheWallClock(t *testing.T) {
	addr := sharedMember(t)
	cli := newClient(t, addr)
	for _, off := range []time.Duration{10 * time.Minute, -10 * time.Minute} {
		p := newPool(t, cli)
		const d = 3 * time.Second
		start := time.Now()
		if err := p.Pause(d, "clock test"); err != nil {
			t.Fatal(err)
		}
		key := "llmslots/" + p.Name() + "/throttle/state"
		resp, err := cli.Get(context.Background(), key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("state key %s: %v, %v", key, resp, err)
		}
		var v map[string]any
		dec := json.NewDecoder(bytes.NewReader(resp.Kvs[0].Value))
		dec.UseNumber() // the lease's id is an int64 no float64 holds
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		rep := v["last_report"].(map[string]any)
		at, _ := time.Parse(time.RFC3339Nano, rep["at"].(string))
		rep["at"] = at.Add(off).Format(time.RFC3339Nano)
		wrong, _ := json.Marshal(v)
		if _, err := cli.Txn(context.Background()).If(clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)).
			Then(clientv3.OpPut(key, string(wrong))).Commit(); err != nil {
			t.Fatal(err)
		}
		g, err := p.Acquire(1, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		g.Release()
		t.Logf("report's clock %+v: granted %v after a pause of %v; state %s", off, took.Round(time.Millisecond), d, wrong)
		if took < d || took > d+2*time.Second {
			t.Errorf("report's clock %+v: granted after %v, want %v..%v", off, took, d, d+2*time.Second)
		}
	}
}

// TestReportExtendsAPauseSeenLate: a host that first sees a pause of 4 s
// 2.5 s into it, and reports a hint of 3 s, makes the pause end 5.5 s
// after it began, not at 4 s: it asks the server how long the pause has
// left rather than counting it from when it saw it.
func TestReportExtendsAPauseSeenLate(t *testing.T) {
	addr := sharedMember(t)
	cli := newClient(t, addr)
	p1 := newPool(t, cli)
	p2 := namedPool(t, p1.Name(), addr) // another process's view: it has seen nothing yet
	g, err := p2.Acquire(2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p1.Pause(4*time.Second, "seen late"); err != nil {
		t.Fatal(err)
	}
	late := time.NewTimer(2500 * time.Millisecond) // the scenario: 2.5 s of the pause pass
	<-late.C
	if err := g.Throttled(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	reported := time.Since(start)
	g.Release()
	g, err = p1.Acquire(2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	g.Release()
	t.Logf("pause of 4 s at 0, report of 3 s at %v: next grant at %v", reported.Round(time.Millisecond), took.Round(time.Millisecond))
	if took < reported+3*time.Second {
		t.Errorf("granted %v after the pause began, before the report's 3 s (made at %v) had passed", took, reported)
	}
}

// TestThrottledLimitAcrossHosts: four hosts behind their own proxies on
// max 4, one of them reporting every fifth round, after a report by the
// test lowered the limit to 2. etcd's own history (a watch of the slots
// and the state from before the first grant) is replayed: at every grant
// the slot keys below max must not exceed the limit the state then set.
func TestThrottledLimitAcrossHosts(t *testing.T) {
	addr := sharedMember(t)
	name := poolName(t)
	const max = 4
	pool := namedPool(t, name, addr)
	g, err := pool.Acquire(max, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Throttled(time.Second); err != nil {
		t.Fatal(err)
	}
	g.Release()
	cli := newClient(t, addr)
	base := "llmslots/" + name + "/"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start, err := cli.Get(ctx, base+"throttle/state")
	if err != nil || len(start.Kvs) != 1 {
		t.Fatalf("no state after the report: %v %v", start, err)
	}
	wch := cli.Watch(ctx, base, clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision))
	var hs []*etcdtest.Host
	for i := range 4 {
		cfg := etcdtest.HostConfig{Pool: name, Max: max, Hold: 30 * time.Millisecond, Jitter: 40 * time.Millisecond, Rounds: 15}
		if i == 0 {
			cfg.ReportEvery = 5
		}
		hs = append(hs, startHost(t, i, cfg, addr))
	}
	for _, h := range hs {
		if !h.Wait(90 * time.Second) {
			t.Fatalf("host %d did not finish; events %v", h.N, h.Events())
		}
	}
	end, err := cli.Get(ctx, base+"nothing")
	if err != nil {
		t.Fatal(err)
	}
	limit := throttle.Effective(&throttle.State{Limit: 2.8}, max)
	holders := map[string]bool{}
	grants, restricted, atLimit, peak := 0, 0, 0, 0
	for caughtUp := false; !caughtUp; {
		var wr clientv3.WatchResponse
		select {
		case r, ok := <-wch:
			if !ok || r.Err() != nil {
				t.Fatalf("watch: %v", r.Err())
			}
			wr = r
		case <-time.After(3 * time.Second):
			t.Fatalf("the watch did not reach revision %d", end.Header.Revision)
		}
		caughtUp = wr.Header.Revision >= end.Header.Revision
		for _, ev := range wr.Events {
			rev := ev.Kv.ModRevision
			key := string(ev.Kv.Key)
			switch {
			case key == base+"throttle/state" && ev.Type == clientv3.EventTypePut:
				var s struct{ Limit float64 }
				_ = json.Unmarshal(ev.Kv.Value, &s)
				limit = throttle.Effective(&throttle.State{Limit: s.Limit}, max)
			case len(key) == len(base)+len("slots/0000") && key[:len(base)+6] == base+"slots/":
				if ev.Type == clientv3.EventTypeDelete {
					delete(holders, key)
					continue
				}
				holders[key] = true
				grants++
				if limit < max {
					restricted++
					if len(holders) == limit {
						atLimit++
					}
				}
				peak = maxInt(peak, len(holders))
				if len(holders) > limit {
					t.Errorf("revision %d: %d holders, over the limit %d", rev, len(holders), limit)
				}
			}
		}
	}
	t.Logf("%d grants in etcd's history, %d under a lowered limit (%d of them filling it), peak %d holders", grants, restricted, atLimit, peak)
	if grants != 4*15 || restricted < 10 || atLimit == 0 {
		t.Errorf("want 60 grants, 10 or more under a lowered limit and one filling it: the test would not see an over-grant")
	}
	for _, h := range hs {
		for _, ev := range h.Events() {
			if ev.Kind == "err" || ev.Kind == "reported" && ev.Msg != "" {
				t.Errorf("host %d: %s %s", h.N, ev.Kind, ev.Msg)
			}
		}
	}
}

// TestPauseResumeStatus: Pause shows in ReadStatus with its reason and an
// end by the server's clock, holds back Acquire, and Resume ends it.
func TestPauseResumeStatus(t *testing.T) {
	cli := newClient(t, sharedMember(t))
	p := newPool(t, cli)
	if err := p.Pause(time.Minute, "maintenance"); err != nil {
		t.Fatal(err)
	}
	st, err := p.ReadStatus(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	th := st.Throttle
	if th == nil || th.LastReport == nil || th.LastReport.Reason != "maintenance" || th.LastReport.Kind != "pause" || st.Limit != 2 {
		t.Fatalf("status after Pause: limit %d, throttle %+v", st.Limit, th)
	}
	if left := time.Until(th.PausedUntil); left < 58*time.Second || left > time.Minute+time.Second {
		t.Errorf("paused until %v from now, want about a minute", left)
	}
	if _, err := p.Acquire(2, 300*time.Millisecond); !errors.Is(err, llmslots.ErrBusy) {
		t.Fatalf("Acquire while paused: %v, want ErrBusy", err)
	}
	done := make(chan error, 1)
	go func() {
		g, err := p.Acquire(2, 10*time.Second)
		if err == nil {
			g.Release()
		}
		done <- err
	}()
	waitInLine(t, p, 2, 1)
	resumed := time.Now()
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Acquire waiting through Resume: %v", err)
	}
	t.Logf("granted %v after Resume", time.Since(resumed).Round(time.Millisecond))
	if st, err = p.ReadStatus(context.Background(), 2); err != nil || st.Throttle != nil {
		t.Errorf("status after Resume: %+v, %v; want no throttle", st.Throttle, err)
	}
	for _, bad := range []time.Duration{0, -time.Second, 25 * time.Hour} {
		if err := p.Pause(bad, ""); !errors.Is(err, llmslots.ErrInvalid) {
			t.Errorf("Pause(%v): %v, want ErrInvalid", bad, err)
		}
	}
}

// TestPausedWaitersIdle: three waiters in line behind a pause of 5 s make
// no request for 2 s of it (the head watches the throttle's keys, the
// others the waiter ahead; no timer runs while the pause key lives), and
// all three are granted once it ends, in order. Requests are counted by
// the member itself (etcd_mvcc_range_total and txn_total, this process's
// member, which no other test uses meanwhile).
func TestPausedWaitersIdle(t *testing.T) {
	cli := newClient(t, sharedMember(t))
	p := newPool(t, cli)
	const d = 5 * time.Second
	if err := p.Pause(d, "idle test"); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	got := make(chan int, 3)
	for i := range 3 {
		go func() {
			g, err := p.Acquire(1, 20*time.Second)
			if err != nil {
				t.Errorf("waiter %d: %v", i, err)
				got <- -1
				return
			}
			g.Release()
			got <- i
		}()
		waitInLine(t, p, 1, i+1) // so that they stand in this order
	}
	before := requests(t)
	window := time.NewTimer(2 * time.Second) // the span measured, not a wait for an event
	<-window.C
	made := requests(t) - before
	if time.Since(paused) >= d {
		t.Fatalf("the window outlasted the pause; the machine is too slow for this test")
	}
	for want := range 3 {
		if i := <-got; i != want {
			t.Errorf("granted waiter %d, want %d", i, want)
		}
	}
	t.Logf("3 waiters in a paused line: %v requests in 2 s; all granted %v after the pause began", made, time.Since(paused).Round(time.Millisecond))
	if made > 0 {
		t.Errorf("the paused line made %v requests in 2 s, want none", made)
	}
}

// requests is how many ranges and transactions the member has served.
func requests(t *testing.T) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "etcd_mvcc_range_total" || mf.GetName() == "etcd_mvcc_txn_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	if n == 0 {
		t.Fatal("no etcd_mvcc_range_total or txn_total among the metrics")
	}
	return n
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// TestUsageLimitWaitsForTheReset: a usage limit reported on one client
// (ReportLimit) holds a second client's grant until the reset it names,
// keeps the limit, and says so in Status; a busy error names it.
func TestUsageLimitWaitsForTheReset(t *testing.T) {
	addr := sharedMember(t)
	name := poolName(t)
	a, b := namedPool(t, name, addr), namedPool(t, name, addr)
	g, err := a.Acquire(2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	reset := time.Now().Add(4 * time.Second)
	line := "You've hit your usage limit. Try again in 4 seconds."
	if err := g.ReportLimit(llmslots.Limit{Kind: llmslots.UsageLimit, ResetAt: reset, Line: line}); err != nil {
		t.Fatal(err)
	}
	g.Release()
	st, err := b.ReadStatus(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if th := st.Throttle; th == nil || th.LastReport == nil || th.LastReport.Kind != "usage" || th.LastReport.Reason != line || st.Limit != 2 {
		t.Fatalf("status after the usage limit: limit %d, throttle %+v; want kind usage, the line, limit 2", st.Limit, st.Throttle)
	}
	_, err = b.Acquire(2, 300*time.Millisecond)
	if !errors.Is(err, llmslots.ErrBusy) || !bytes.Contains([]byte(err.Error()), []byte("usage limit to reset")) {
		t.Fatalf("Acquire in the pause: %v; want ErrBusy naming the usage limit", err)
	}
	got, err := b.Acquire(2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	// The cluster rounds the pause up to whole seconds.
	if late := time.Since(reset); late < 0 || late > 2*time.Second {
		t.Errorf("granted %v after the reset; want within 0..2 s", late.Round(time.Millisecond))
	}
}
