//go:build unix

package etcdslots_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/llmslots/llmslots/etcdslots"
	"github.com/llmslots/llmslots/etcdslots/internal/etcdtest"
)

// Each "host" below is a child process reaching the cluster through its
// own TCP proxy. Whether more than max ever worked at once is judged from
// the hosts' own logs (start, end, lost) and the instants the test killed
// or stopped them, not from the library's view.

const testTTL = 2 * time.Second

func startHost(t *testing.T, n int, cfg etcdtest.HostConfig, upstreams ...string) *etcdtest.Host {
	t.Helper()
	if cfg.TTL == 0 {
		cfg.TTL = testTTL
	}
	if cfg.Label == "" {
		cfg.Label = fmt.Sprintf("host%d", n)
	}
	h, err := etcdtest.StartHost(n, cfg, upstreams...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func mustEvent(t *testing.T, h *etcdtest.Host, kind string, count int, timeout time.Duration) etcdtest.Event {
	t.Helper()
	ev, ok := h.WaitFor(kind, count, timeout)
	if !ok {
		t.Fatalf("host %d: no %q #%d within %v; events: %v", h.N, kind, count, timeout, h.Events())
	}
	return ev
}

// checkNeverOverMax fails the test if the hosts' logs show more than max
// working at once, or two on one slot; it returns the peak.
func checkNeverOverMax(t *testing.T, max int, hosts ...*etcdtest.Host) int {
	t.Helper()
	var ivs []etcdtest.Interval
	for _, h := range hosts {
		ivs = append(ivs, h.Intervals()...)
	}
	peak, bad := etcdtest.Overlaps(ivs, max)
	for _, b := range bad {
		t.Error("over-grant: " + b)
	}
	return peak
}

// waitInLine waits until the pool's line has n live waiters.
func waitInLine(t *testing.T, p *etcdslots.Pool, max, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, func() bool {
		st, err := p.ReadStatus(context.Background(), max)
		return err == nil && len(st.Waiting) == n
	})
}

func poolName(t *testing.T) string {
	return fmt.Sprintf("%s-%d", sanitize(t.Name()), time.Now().UnixNano()%1e9)
}

func TestHostsNeverOverMax(t *testing.T) {
	addr := sharedMember(t)
	name := poolName(t)
	const max, hosts, rounds = 2, 5, 12
	var hs []*etcdtest.Host
	for i := range hosts {
		hs = append(hs, startHost(t, i, etcdtest.HostConfig{Pool: name, Max: max, Hold: 10 * time.Millisecond, Jitter: 30 * time.Millisecond, Rounds: rounds}, addr))
	}
	for _, h := range hs {
		if !h.Wait(60 * time.Second) {
			t.Fatalf("host %d did not finish", h.N)
		}
		if n := len(h.Intervals()); n != rounds {
			t.Errorf("host %d worked %d times, want %d; events %v", h.N, n, rounds, h.Events())
		}
	}
	if peak := checkNeverOverMax(t, max, hs...); peak != max {
		t.Errorf("peak %d working at once, want %d (the test would not see an over-grant)", peak, max)
	}
}

// TestKilledHolderReclaimed: a SIGKILLed holder's slot goes to the waiter
// within TTL + 1 s.
func TestKilledHolderReclaimed(t *testing.T) {
	addr := sharedMember(t)
	name := poolName(t)
	a := startHost(t, 0, etcdtest.HostConfig{Pool: name, Max: 1, Hold: time.Hour, Rounds: 1}, addr)
	mustEvent(t, a, "start", 1, 20*time.Second)
	b := startHost(t, 1, etcdtest.HostConfig{Pool: name, Max: 1, Hold: 10 * time.Millisecond, Rounds: 1}, addr)
	waitInLine(t, namedPool(t, name, addr), 1, 1)
	killed := a.Kill()
	got := mustEvent(t, b, "start", 1, testTTL+5*time.Second)
	reclaim := got.At.Sub(killed)
	t.Logf("reclaim after SIGKILL: %v (TTL %v)", reclaim.Round(time.Millisecond), testTTL)
	if reclaim > testTTL+time.Second {
		t.Errorf("reclaim took %v, want <= TTL+1s", reclaim)
	}
	checkNeverOverMax(t, 1, a, b)
}

// TestStoppedHolder: a SIGSTOPped holder's slot goes to the waiter within
// TTL + 1 s; resumed, the old holder sees Lost at once, and its token is
// below the new holder's.
func TestStoppedHolder(t *testing.T) {
	addr := sharedMember(t)
	name := poolName(t)
	a := startHost(t, 0, etcdtest.HostConfig{Pool: name, Max: 1, Hold: time.Hour, Rounds: 1}, addr)
	aStart := mustEvent(t, a, "start", 1, 20*time.Second)
	b := startHost(t, 1, etcdtest.HostConfig{Pool: name, Max: 1, Hold: time.Hour, Rounds: 1}, addr)
	waitInLine(t, namedPool(t, name, addr), 1, 1)
	stopped := a.Stop()
	bStart := mustEvent(t, b, "start", 1, testTTL+5*time.Second)
	t.Logf("granted %v after the holder's SIGSTOP", bStart.At.Sub(stopped).Round(time.Millisecond))
	if d := bStart.At.Sub(stopped); d > testTTL+time.Second {
		t.Errorf("regrant took %v, want <= TTL+1s", d)
	}
	resumed := time.Now()
	a.Cont()
	lost := mustEvent(t, a, "lost", 1, 5*time.Second)
	t.Logf("resumed holder saw Lost %v after SIGCONT: %s", lost.At.Sub(resumed).Round(time.Millisecond), lost.Msg)
	if d := lost.At.Sub(resumed); d > 500*time.Millisecond {
		t.Errorf("resumed holder saw Lost only after %v", d)
	}
	if aStart.Token >= bStart.Token {
		t.Errorf("tokens: old holder %d, new holder %d; must grow", aStart.Token, bStart.Token)
	}
	checkNeverOverMax(t, 1, a, b)
}

// TestDeadWaiterAtHead: a waiter SIGKILLed at the head of the line blocks
// it for at most its TTL; one SIGSTOPped there loses its place, and says so
// when resumed.
func TestDeadWaiterAtHead(t *testing.T) {
	for _, stop := range []bool{false, true} {
		t.Run(map[bool]string{false: "killed", true: "stopped"}[stop], func(t *testing.T) {
			addr := sharedMember(t)
			name := poolName(t)
			watcher := namedPool(t, name, addr)
			// The test itself holds the slot while the line forms.
			held, err := watcher.Acquire(1, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			w := startHost(t, 1, etcdtest.HostConfig{Pool: name, Max: 1, Hold: time.Hour, Rounds: 1}, addr)
			waitInLine(t, watcher, 1, 1)
			c := startHost(t, 2, etcdtest.HostConfig{Pool: name, Max: 1, Hold: 10 * time.Millisecond, Rounds: 1}, addr)
			waitInLine(t, watcher, 1, 2)
			var gone time.Time
			if stop {
				gone = w.Stop()
			} else {
				gone = w.Kill()
			}
			if err := held.Release(); err != nil {
				t.Fatal(err)
			}
			cStart := mustEvent(t, c, "start", 1, testTTL+5*time.Second)
			d := cStart.At.Sub(gone)
			t.Logf("the waiter behind a dead head was granted %v after the head died", d.Round(time.Millisecond))
			if d > testTTL+time.Second {
				t.Errorf("took %v, want <= TTL+1s", d)
			}
			if stop {
				w.Cont()
				ev := mustEvent(t, w, "err", 1, 5*time.Second)
				if !strings.Contains(ev.Msg, "lease") {
					t.Errorf("resumed waiter's error does not say its lease ended: %s", ev.Msg)
				}
				t.Logf("resumed waiter: %s", ev.Msg)
			}
			checkNeverOverMax(t, 1, w, c)
		})
	}
}

// TestCutOffHolderSeesLostFirst: a holder cut off from the cluster by its
// proxy sees Lost before any other process is granted its slot.
func TestCutOffHolderSeesLostFirst(t *testing.T) {
	addr := sharedMember(t)
	for run := range 3 {
		name := poolName(t)
		watcher := namedPool(t, name, addr)
		a := startHost(t, 0, etcdtest.HostConfig{Pool: name, Max: 1, Hold: time.Hour, Rounds: 1}, addr)
		mustEvent(t, a, "start", 1, 20*time.Second)
		b := startHost(t, 1, etcdtest.HostConfig{Pool: name, Max: 1, Hold: 10 * time.Millisecond, Rounds: 1}, addr)
		waitInLine(t, watcher, 1, 1)
		// Cut at a random point of the renewal cycle.
		time.Sleep(time.Duration(run) * testTTL / 7)
		cut := time.Now()
		a.Proxy.Cut()
		lost := mustEvent(t, a, "lost", 1, testTTL+3*time.Second)
		granted := mustEvent(t, b, "start", 1, testTTL+5*time.Second)
		margin := granted.At.Sub(lost.At)
		t.Logf("run %d: cut-off holder saw Lost %v after the cut, %v before the slot was granted again", run, lost.At.Sub(cut).Round(time.Millisecond), margin.Round(time.Millisecond))
		if margin <= 0 {
			t.Errorf("run %d: slot granted again %v before the cut-off holder saw Lost", run, -margin)
		}
		checkNeverOverMax(t, 1, a, b)
	}
}

// namedPool is the test's own view of pool name, for ReadStatus.
func namedPool(t *testing.T, name string, addrs ...string) *etcdslots.Pool {
	t.Helper()
	p, err := etcdslots.NewPool(newClient(t, addrs...), name, etcdslots.WithTTL(testTTL))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
