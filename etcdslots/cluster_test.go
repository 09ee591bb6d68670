//go:build unix

package etcdslots_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/llmslots/llmslots/etcdslots"
	"github.com/llmslots/llmslots/etcdslots/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// startCluster starts members in child processes, all at once (a member
// of a new cluster is ready only once a quorum has met).
func startCluster(t *testing.T, cfgs []etcdtest.MemberConfig) []*etcdtest.Process {
	t.Helper()
	procs := make([]*etcdtest.Process, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, c := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs[i], errs[i] = c.StartProcess()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(procs[i].Kill)
	}
	return procs
}

// leader returns the index of the member that leads, asking each.
func leader(t *testing.T, cli *clientv3.Client, cfgs []etcdtest.MemberConfig, alive []bool) int {
	t.Helper()
	var idx = -1
	waitFor(t, 15*time.Second, func() bool {
		for i, c := range cfgs {
			if !alive[i] {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			st, err := cli.Status(ctx, "http://"+c.ClientAddr())
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				idx = i
				return true
			}
		}
		return false
	})
	return idx
}

// starts counts the grants the hosts have logged.
func starts(hs []*etcdtest.Host) (n int, last time.Time) {
	for _, h := range hs {
		for _, ev := range h.Events() {
			if ev.Kind == "start" {
				n++
				if ev.At.After(last) {
					last = ev.At
				}
			}
		}
	}
	return n, last
}

// firstStartAfter returns the first grant logged after t0.
func firstStartAfter(t *testing.T, hs []*etcdtest.Host, t0 time.Time, timeout time.Duration) time.Time {
	t.Helper()
	var first time.Time
	waitFor(t, timeout, func() bool {
		for _, h := range hs {
			for _, ev := range h.Events() {
				if ev.Kind == "start" && ev.At.After(t0) && (first.IsZero() || ev.At.Before(first)) {
					first = ev.At
				}
			}
		}
		return !first.IsZero()
	})
	return first
}

// TestThreeMembers: hosts keep taking and giving back slots while a
// follower and then the leader of a 3-member cluster are SIGKILLed; with
// two members gone (no quorum) nothing is granted and Acquire fails within
// its wait. Never more than max, by the hosts' logs.
func TestThreeMembers(t *testing.T) {
	cfgs := etcdtest.NewCluster(t.TempDir(), 3)
	procs := startCluster(t, cfgs)
	alive := []bool{true, true, true}
	var addrs []string
	for _, c := range cfgs {
		addrs = append(addrs, c.ClientAddr())
	}
	cli := newClient(t, addrs...)
	name := poolName(t)
	const max = 2
	var hs []*etcdtest.Host
	for i := range 4 {
		hs = append(hs, startHost(t, i, etcdtest.HostConfig{Pool: name, Max: max, Hold: 30 * time.Millisecond, Jitter: 70 * time.Millisecond, Wait: 3 * time.Second}, addrs...))
	}
	defer func() {
		if t.Failed() {
			for _, h := range hs {
				t.Logf("host %d: %v", h.N, h.Events())
			}
		}
	}()
	waitGrants(t, hs, 10)

	// A follower.
	l := leader(t, cli, cfgs, alive)
	f := (l + 1) % 3
	killed := time.Now()
	procs[f].Kill()
	alive[f] = false
	next := firstStartAfter(t, hs, killed.Add(100*time.Millisecond), 10*time.Second)
	t.Logf("follower m%d SIGKILLed: next grant %v later", f, next.Sub(killed).Round(time.Millisecond))
	waitGrants(t, hs, 10)
	p, err := cfgs[f].StartProcess()
	if err != nil {
		t.Fatal(err)
	}
	procs[f] = p
	t.Cleanup(p.Kill)
	alive[f] = true

	// The leader.
	l = leader(t, cli, cfgs, alive)
	killed = time.Now()
	procs[l].Kill()
	alive[l] = false
	next = firstStartAfter(t, hs, killed.Add(100*time.Millisecond), 15*time.Second)
	t.Logf("leader m%d SIGKILLed: next grant %v later", l, next.Sub(killed).Round(time.Millisecond))
	waitGrants(t, hs, 10)

	// A second member: no quorum.
	for i := range alive {
		if alive[i] {
			procs[i].Kill()
			alive[i] = false
			break
		}
	}
	noQuorum := time.Now()
	pool := namedPool(t, name, addrs...)
	const wait = 2 * time.Second
	_, err = pool.Acquire(max, wait)
	took := time.Since(noQuorum)
	if !errors.Is(err, etcdslots.ErrUnavailable) {
		t.Errorf("without quorum: got %v, want ErrUnavailable", err)
	}
	if took > wait+500*time.Millisecond {
		t.Errorf("without quorum: error after %v, wait %v", took, wait)
	}
	t.Logf("without quorum: error after %v: %v", took.Round(time.Millisecond), err)
	// Give the hosts time to reach their safe deadlines; none may start.
	time.Sleep(testTTL)
	for _, h := range hs {
		for _, ev := range h.Events() {
			if ev.Kind == "start" && ev.At.After(noQuorum.Add(200*time.Millisecond)) {
				t.Errorf("host %d granted at %s, %v after quorum was lost", h.N, ev.At.Format("15:04:05.000"), ev.At.Sub(noQuorum))
			}
		}
	}
	n, _ := starts(hs)
	peak := checkNeverOverMax(t, max, hs...)
	t.Logf("%d grants, peak %d at once (max %d)", n, peak, max)
}

// TestEtcdRestart: tokens keep growing across a SIGKILL and restart of
// etcd (the revision is on disk).
func TestEtcdRestart(t *testing.T) {
	c := etcdtest.NewCluster(t.TempDir(), 1)[0]
	m, err := c.StartProcess()
	if err != nil {
		t.Fatal(err)
	}
	cli := newClient(t, c.ClientAddr())
	p := newPool(t, cli, etcdslots.WithTTL(testTTL))
	var last int64
	for range 3 {
		g, err := p.Acquire(1, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if g.Token() <= last {
			t.Errorf("token %d after %d", g.Token(), last)
		}
		last = g.Token()
		g.Release()
	}
	m.Kill()
	if m, err = c.StartProcess(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Kill)
	g, err := p.Acquire(1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	t.Logf("token %d before etcd's SIGKILL and restart, %d after", last, g.Token())
	if g.Token() <= last {
		t.Errorf("token %d after a restart, %d before: must grow", g.Token(), last)
	}
}

// waitGrants waits for n more grants.
func waitGrants(t *testing.T, hs []*etcdtest.Host, n int) {
	t.Helper()
	before, _ := starts(hs)
	waitFor(t, 20*time.Second, func() bool {
		now, _ := starts(hs)
		return now >= before+n
	})
}
