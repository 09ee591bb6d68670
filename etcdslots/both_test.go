//go:build unix

package etcdslots_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/etcdslots"
)

// TestAcquireBoth: the local slot is taken first; a caller that cannot get
// one never joins the cluster's line, and one that cannot get a cluster
// slot gives its local slot back.
func TestAcquireBoth(t *testing.T) {
	cluster := newPool(t, newClient(t, sharedMember(t)))
	local, err := llmslots.NewPool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := etcdslots.AcquireBoth(ctx, local, 1, cluster, 2)
	if err != nil {
		t.Fatal(err)
	}

	// Local pool full: the caller waits there, not in the cluster's line.
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = etcdslots.AcquireBoth(wctx, local, 1, cluster, 2)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("local pool full: got %v, want a deadline error", err)
	}
	st, err := cluster.ReadStatus(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != 1 || len(st.Waiting) != 0 {
		t.Errorf("cluster after a local wait: %d active, %d waiting; want 1, 0", st.Active, len(st.Waiting))
	}

	// Cluster pool full: the local slot is given back.
	other, err := cluster.Acquire(2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	local2, err := llmslots.NewPool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = etcdslots.AcquireBoth(wctx, local2, 1, cluster, 2)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, etcdslots.ErrUnavailable) {
		t.Fatalf("cluster pool full: got %v, want a deadline error", err)
	}
	lst, err := local2.ReadStatus(1)
	if err != nil {
		t.Fatal(err)
	}
	if lst.Active != 0 {
		t.Errorf("local slot still held after the cluster acquire failed: %+v", lst)
	}

	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Lost():
	default:
		t.Error("Lost not closed after Release")
	}
}
