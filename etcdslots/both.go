package etcdslots

import (
	"context"
	"errors"
	"fmt"

	"github.com/llmslots/llmslots"
)

// Both is a per-host slot and a cluster slot held together; see
// AcquireBoth.
type Both struct {
	Local   *llmslots.Guard
	Cluster *Guard
}

// AcquireBoth takes a slot of the host's file pool local (first localMax)
// and then one of the cluster pool (first clusterMax), waiting until ctx
// is done: at most localMax at once on this host and clusterMax across all
// hosts.
//
// The order is fixed, local first, and every caller must keep it: then no
// two processes can each hold what the other waits for, so there is no
// deadlock, and a process never holds a cluster slot, which other hosts
// need, while it waits for a slot only its own host can give. The price is
// that a process holds a local slot while it waits in the cluster's line;
// other processes on the host wait behind it, as they would for the
// cluster anyway.
//
// On error neither slot is held.
func AcquireBoth(ctx context.Context, local *llmslots.Pool, localMax int, cluster *Pool, clusterMax int) (*Both, error) {
	if ctx == nil || local == nil || cluster == nil {
		return nil, invalidf("AcquireBoth needs a context, a local pool and a cluster pool")
	}
	if err := checkMax(clusterMax); err != nil {
		return nil, err
	}
	lg, err := local.AcquireContext(ctx, localMax)
	if err != nil {
		return nil, err
	}
	cg, err := cluster.AcquireContext(ctx, clusterMax)
	if err != nil {
		if rerr := lg.Release(); rerr != nil {
			return nil, errors.Join(err, fmt.Errorf("etcdslots: releasing the local slot: %w", rerr))
		}
		return nil, err
	}
	return &Both{Local: lg, Cluster: cg}, nil
}

// Lost returns the cluster slot's Lost channel: the local slot, a file
// lock, cannot be lost while the process lives.
func (b *Both) Lost() <-chan struct{} { return b.Cluster.Lost() }

// Release gives back the cluster slot, then the local one.
func (b *Both) Release() error {
	return errors.Join(b.Cluster.Release(), b.Local.Release())
}
