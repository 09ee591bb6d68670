//go:build unix

// Command bench measures etcdslots against one embedded etcd member on
// loopback (fsync on), with every holder a real child process reaching
// the member through its own TCP proxy, timed from the processes' own
// logs:
//
//	go run ./bench           # from etcdslots/: every measurement
//	go run ./bench -quick    # fewer runs
//
// It prints: the uncontended acquire+release time; handoff (a holder's
// last log line before Release to the next holder's first after Acquire)
// p50/p99 with FIFO inversions; reclaim after a holder's SIGKILL against
// the TTL; and, in runs where a holder is cut off by its proxy, how long
// before the slot was granted again the cut-off holder saw Lost.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/llmslots/llmslots/etcdslots"
	"github.com/llmslots/llmslots/etcdslots/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

var (
	flagQuick = flag.Bool("quick", false, "fewer runs")
	flagTTL   = flag.Duration("ttl", 2*time.Second, "lease TTL for the reclaim and cut-off runs")
	flagDir   = flag.String("dir", "", "directory for etcd's data (default: the temp dir)")
)

func main() {
	if etcdtest.RunChild() {
		return
	}
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	dir, err := os.MkdirTemp(*flagDir, "etcdslots-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c := etcdtest.NewCluster(filepath.Join(dir, "etcd"), 1)[0]
	start := time.Now()
	e, err := c.Start()
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Printf("etcd member ready in %v (embedded, one member, loopback, data in %s)\n", time.Since(start).Round(time.Millisecond), dir)
	addr := c.ClientAddr()

	rounds, reclaims, cuts := 200, 5, 10
	if *flagQuick {
		rounds, reclaims, cuts = 60, 2, 3
	}
	loadavg()
	if err := uncontended(addr, rounds); err != nil {
		return err
	}
	if err := handoff(addr, rounds); err != nil {
		return err
	}
	if err := reclaim(addr, reclaims); err != nil {
		return err
	}
	if err := cutOff(addr, cuts); err != nil {
		return err
	}
	loadavg()
	return nil
}

// loadavg prints the host's load, which the tail latencies depend on: the
// figures of a run on a busy machine are not those of a quiet one.
func loadavg() {
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average (1, 5, 15 min): %s", strings.Join(strings.Fields(string(b))[:3], " "))
		fmt.Printf(" on %d CPUs\n", runtime.NumCPU())
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// uncontended times Acquire+Release with nobody else in the pool, in this
// process.
func uncontended(addr string, n int) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + addr}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	p, err := etcdslots.NewPool(cli, "bench-uncontended")
	if err != nil {
		return err
	}
	var acq, rel []time.Duration
	for range n {
		t0 := time.Now()
		g, err := p.Acquire(1, 5*time.Second)
		if err != nil {
			return err
		}
		t1 := time.Now()
		if err := g.Release(); err != nil {
			return err
		}
		acq, rel = append(acq, t1.Sub(t0)), append(rel, time.Since(t1))
	}
	fmt.Printf("uncontended: Acquire p50 %v p99 %v; Release p50 %v p99 %v (%d rounds)\n",
		ms(percentile(acq, .5)), ms(percentile(acq, .99)), ms(percentile(rel, .5)), ms(percentile(rel, .99)), n)
	return nil
}

// handoff runs 3 host processes, max 1, each holding 20 ms and joining
// the line again at once, so a release always has someone waiting. Handoff
// is timed from the hosts' logs; FIFO order is judged from the server's
// own record, a watch on the pool's keys: a grant (a slot key put under a
// waiter's lease) is an inversion if a waiter key created earlier was
// still there.
func handoff(addr string, total int) error {
	const hosts = 3
	const name = "bench-handoff"
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + addr}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := etcdslots.DefaultPrefix + "/" + name + "/"
	wch := cli.Watch(ctx, base, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	<-wch
	inversions, checked := make(chan int, 1), make(chan int, 1)
	go func() {
		waiting := map[string]int64{} // waiter key -> create revision
		inv, n := 0, 0
		for wr := range wch {
			for _, ev := range wr.Events {
				key := string(ev.Kv.Key)
				isWaiter := strings.HasPrefix(key, base+"waiters/")
				switch {
				case isWaiter && ev.Type == clientv3.EventTypePut:
					waiting[key] = ev.Kv.CreateRevision
				case isWaiter:
					delete(waiting, key)
				case ev.Type == clientv3.EventTypePut && strings.HasPrefix(key, base+"slots/"):
					mine := base + "waiters/" + fmt.Sprintf("%016x", ev.Kv.Lease)
					n++
					for k, rev := range waiting {
						if k != mine && rev < waiting[mine] {
							inv++
						}
					}
				}
			}
		}
		inversions <- inv
		checked <- n
	}()
	var hs []*etcdtest.Host
	for i := range hosts {
		h, err := etcdtest.StartHost(i, etcdtest.HostConfig{Pool: name, Max: 1, Hold: 20 * time.Millisecond, Rounds: total / hosts}, addr)
		if err != nil {
			return err
		}
		defer h.Close()
		hs = append(hs, h)
	}
	var evs []etcdtest.Event
	for _, h := range hs {
		if !h.Wait(5 * time.Minute) {
			return fmt.Errorf("handoff: host %d did not finish", h.N)
		}
		evs = append(evs, h.Events()...)
	}
	time.Sleep(100 * time.Millisecond) // let the last events arrive
	cancel()
	slices.SortFunc(evs, func(a, b etcdtest.Event) int { return a.At.Compare(b.At) })
	var ds []time.Duration
	var lastEnd time.Time
	grants := 0
	for _, ev := range evs {
		switch ev.Kind {
		case "start":
			grants++
			// Skip the first grants, while the hosts were still starting.
			if !lastEnd.IsZero() && grants > hosts {
				ds = append(ds, ev.At.Sub(lastEnd))
			}
		case "end":
			lastEnd = ev.At
		}
	}
	inv, n := <-inversions, <-checked
	fmt.Printf("handoff (3 host processes, max 1, hold 20ms): p50 %v p99 %v max %v over %d handoffs; FIFO inversions %d in %d grants (by the server's revisions)\n",
		ms(percentile(ds, .5)), ms(percentile(ds, .99)), ms(slices.Max(ds)), len(ds), inv, n)
	return nil
}

// reclaim SIGKILLs a holder with a waiter in line and times the waiter's
// grant from the kill.
func reclaim(addr string, runs int) error {
	var ds []time.Duration
	for r := range runs {
		name := fmt.Sprintf("bench-reclaim-%d-%d", r, time.Now().UnixNano()%1e6)
		a, err := etcdtest.StartHost(0, etcdtest.HostConfig{Pool: name, Max: 1, TTL: *flagTTL, Hold: time.Hour, Rounds: 1}, addr)
		if err != nil {
			return err
		}
		defer a.Close()
		if _, ok := a.WaitFor("start", 1, 20*time.Second); !ok {
			return fmt.Errorf("reclaim: holder not granted: %v", a.Events())
		}
		b, err := etcdtest.StartHost(1, etcdtest.HostConfig{Pool: name, Max: 1, TTL: *flagTTL, Hold: time.Millisecond, Rounds: 1}, addr)
		if err != nil {
			return err
		}
		defer b.Close()
		if err := inLine(addr, name, 1); err != nil {
			return err
		}
		killed := a.Kill()
		ev, ok := b.WaitFor("start", 1, *flagTTL+10*time.Second)
		if !ok {
			return fmt.Errorf("reclaim: waiter not granted: %v", b.Events())
		}
		ds = append(ds, ev.At.Sub(killed))
	}
	fmt.Printf("reclaim after SIGKILL (TTL %v): min %v median %v max %v over %d runs\n",
		*flagTTL, ms(slices.Min(ds)), ms(percentile(ds, .5)), ms(slices.Max(ds)), len(ds))
	return nil
}

// cutOff cuts a holder's proxy with a waiter in line, and compares when
// the holder saw Lost with when the waiter was granted the slot.
func cutOff(addr string, runs int) error {
	var margins, detect []time.Duration
	early := 0
	for r := range runs {
		name := fmt.Sprintf("bench-cut-%d-%d", r, time.Now().UnixNano()%1e6)
		a, err := etcdtest.StartHost(0, etcdtest.HostConfig{Pool: name, Max: 1, TTL: *flagTTL, Hold: time.Hour, Rounds: 1}, addr)
		if err != nil {
			return err
		}
		defer a.Close()
		if _, ok := a.WaitFor("start", 1, 20*time.Second); !ok {
			return fmt.Errorf("cut-off: holder not granted: %v", a.Events())
		}
		b, err := etcdtest.StartHost(1, etcdtest.HostConfig{Pool: name, Max: 1, TTL: *flagTTL, Hold: time.Millisecond, Rounds: 1}, addr)
		if err != nil {
			return err
		}
		defer b.Close()
		if err := inLine(addr, name, 1); err != nil {
			return err
		}
		// Cut at a different point of the renewal cycle each run.
		time.Sleep(time.Duration(r) * *flagTTL / time.Duration(4*runs))
		cut := time.Now()
		a.Proxy.Cut()
		lost, ok := a.WaitFor("lost", 1, *flagTTL+5*time.Second)
		if !ok {
			return fmt.Errorf("cut-off: holder never saw Lost: %v", a.Events())
		}
		granted, ok := b.WaitFor("start", 1, *flagTTL+10*time.Second)
		if !ok {
			return fmt.Errorf("cut-off: waiter not granted: %v", b.Events())
		}
		m := granted.At.Sub(lost.At)
		if m <= 0 {
			early++
		}
		margins = append(margins, m)
		detect = append(detect, lost.At.Sub(cut))
	}
	fmt.Printf("cut-off holder (TTL %v): saw Lost %v..%v after the cut, %v..%v (median %v) before the slot was granted again; regranted before Lost in %d of %d runs\n",
		*flagTTL, ms(slices.Min(detect)), ms(slices.Max(detect)), ms(slices.Min(margins)), ms(slices.Max(margins)), ms(percentile(margins, .5)), early, runs)
	return nil
}

// inLine waits until pool name has n waiters.
func inLine(addr, name string, n int) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + addr}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	p, err := etcdslots.NewPool(cli, name)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, err := p.ReadStatus(context.Background(), 1)
		if err == nil && len(st.Waiting) == n {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("pool %s: no %d waiters after 10s", name, n)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
