//go:build unix

package etcdslots_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/etcdslots"
)

// Issue 23: a key without a lease under a pool's prefix (an etcdctl put,
// a make-mirror that copies keys but not their leases) is never deleted by
// the server. Before, a slot key of that kind blocked the pool for good
// while status said it would expire shortly, and a waiter key of that kind
// blocked the whole line. Now status says what it is, and Acquire removes
// it when it would otherwise wait on it.
func TestLeaselessKeysDoNotBlock(t *testing.T) {
	cli := newClient(t, sharedMember(t))
	for _, tt := range []struct {
		what string
		key  func(p *etcdslots.Pool) string
	}{
		{"slot key", func(p *etcdslots.Pool) string { return etcdslots.DefaultPrefix + "/" + p.Name() + "/slots/0000" }},
		{"waiter key", func(p *etcdslots.Pool) string { return etcdslots.DefaultPrefix + "/" + p.Name() + "/waiters/planted" }},
	} {
		t.Run(strings.ReplaceAll(tt.what, " ", "-"), func(t *testing.T) {
			p := newPool(t, cli, etcdslots.WithTTL(2*time.Second))
			key := tt.key(p)
			ctx := context.Background()
			if _, err := cli.Put(ctx, key, `{"pid":1,"host":"elsewhere"}`); err != nil {
				t.Fatal(err)
			}
			st, err := p.ReadStatus(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if tt.what == "slot key" {
				s := st.Slots[0]
				if s.State != llmslots.StateStale || !strings.Contains(s.Detail, "no lease") || strings.Contains(s.Detail, "shortly") {
					t.Errorf("status of the planted slot key: %s, %q; want stale, saying it has no lease", s.State, s.Detail)
				}
			} else if len(st.Waiting) != 0 || len(st.DeadWaiters) != 1 {
				t.Errorf("status: waiting %+v, dead %+v; want the planted key among the dead waiters", st.Waiting, st.DeadWaiters)
			}
			start := time.Now()
			g, err := p.Acquire(1, 0) // one attempt: it must not give up on the planted key either
			if err != nil {
				t.Fatalf("Acquire with a lease-less %s planted: %v (after %v)", tt.what, err, time.Since(start).Round(time.Millisecond))
			}
			defer g.Release()
			if d := time.Since(start); d > time.Second {
				t.Errorf("Acquire took %v; want it prompt", d)
			}
			resp, err := cli.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Kvs) == 1 && resp.Kvs[0].Lease == 0 {
				t.Errorf("the lease-less %s is still there", tt.what)
			}
		})
	}
}
