//go:build unix

package etcdslots_test

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/llmslots/llmslots/etcdslots/internal/etcdtest"
)

// TestChaos runs hosts that take and give back slots while others are
// SIGKILLed (and, less often, SIGSTOPped for longer than the TTL and
// resumed) at random, for ETCDSLOTS_CHAOS (default 20s; e.g. 5m for a long
// run), and counts over-grants from the hosts' logs: there must be none.
func TestChaos(t *testing.T) {
	d := 20 * time.Second
	if v := os.Getenv("ETCDSLOTS_CHAOS"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("ETCDSLOTS_CHAOS=%q: %v", v, err)
		}
	}
	addr := sharedMember(t)
	name := poolName(t)
	const max, live = 3, 6
	cfg := etcdtest.HostConfig{Pool: name, Max: max, Hold: 20 * time.Millisecond, Jitter: 200 * time.Millisecond, Wait: 5 * time.Second}
	var all, running []*etcdtest.Host
	next := 0
	spawn := func() {
		h := startHost(t, next, cfg, addr)
		next++
		all = append(all, h)
		running = append(running, h)
	}
	for range live {
		spawn()
	}
	var kills, stops int
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		time.Sleep(500*time.Millisecond + rand.N(1500*time.Millisecond))
		i := rand.N(len(running))
		h := running[i]
		running = append(running[:i], running[i+1:]...)
		if rand.N(5) == 0 {
			// Stopped past its TTL, then resumed: it must see Lost at once.
			h.Stop()
			stops++
			go func() {
				time.Sleep(testTTL + time.Second)
				h.Cont()
			}()
		} else {
			h.Kill()
			kills++
		}
		spawn()
	}
	for _, h := range all {
		h.Kill()
	}
	n, _ := starts(all)
	peak := checkNeverOverMax(t, max, all...)
	t.Logf("chaos: %v, %d hosts, max %d: %d grants, %d SIGKILLs, %d SIGSTOPs, peak %d at once, over-grants: %d",
		d, len(all), max, n, kills, stops, peak, map[bool]int{true: 0, false: 1}[!t.Failed()])
	if n < 10 {
		t.Errorf("only %d grants: the run tested little", n)
	}
}
