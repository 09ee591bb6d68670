package main

import (
	"strings"
	"testing"
	"time"
)

// The grace comes out of the lease's time (issue 22): the default fits
// every TTL run accepts, the largest that fits is accepted, and anything
// longer is refused with a TTL that would take it.
func TestGraceFitsTheTTL(t *testing.T) {
	for _, ttl := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 30 * time.Second, time.Minute, time.Hour} {
		if msg := checkGrace(defaultGrace(ttl), ttl); msg != "" {
			t.Errorf("--ttl %v: the default grace %v is refused: %s", ttl, defaultGrace(ttl), msg)
		}
		most := maxGrace(ttl)
		if msg := checkGrace(most, ttl); msg != "" {
			t.Errorf("--ttl %v: the largest grace %v is refused: %s", ttl, most, msg)
		}
		// Lost closes margin+grace+killWait before the server could expire
		// the lease: never more than TTL/2 (etcdslots.WithLossMargin's limit).
		if early := lossMargin(ttl) + most + killWait; early > ttl/2 {
			t.Errorf("--ttl %v: Lost would close %v early, more than TTL/2", ttl, early)
		}
		if msg := checkGrace(most+time.Millisecond, ttl); msg == "" {
			t.Errorf("--ttl %v: a grace of %v, past the largest, is accepted", ttl, most+time.Millisecond)
		}
	}
	if got, want := defaultGrace(5*time.Second), time.Second; got != want {
		t.Errorf("default grace at the default TTL: %v, want %v", got, want)
	}
	// The TTL the refusal suggests takes the grace.
	for _, grace := range []time.Duration{time.Second, 10 * time.Second, 95 * time.Second} {
		var need time.Duration
		msg := checkGrace(grace, time.Second)
		for d := time.Second; d <= time.Hour; d += time.Second {
			if checkGrace(grace, d) == "" {
				need = d
				break
			}
		}
		if need == 0 || !strings.Contains(msg, "raise --ttl to "+need.String()+" or more") {
			t.Errorf("--grace %v: %q; want it to name --ttl %v", grace, msg, need)
		}
	}
}
