//go:build unix

package llmslots

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A status reader (ReadStatus, `llmslots status`) or a cleanup
// (RemoveDeadWaiters, `llmslots cleanup`) running while a process joins the
// queue must not make its Acquire fail. Joining creates a draft ticket,
// then locks it: a status probe that holds the draft's lock for that
// instant makes the lock fail ("draft ticket locked by another process"),
// and a cleanup that finds the draft not yet locked deletes it, so the
// rename that follows failed. (Probes now leave a young empty file alone:
// see slotfile.FreshAge.) Either way Acquire returned an error that is
// neither ErrBusy nor the context's. (Found through the queue tests, which
// poll ReadStatus every millisecond while helpers join: they fail now and
// then with "0 waiting, want 1" because the helper's Acquire failed so.)
//
// Here goroutines join and leave the queue of a full pool of 1 while
// others read the status, or remove dead waiters, for up to 3 s.
func TestJoiningTheQueueSurvivesStatusAndCleanup(t *testing.T) {
	for _, cleanup := range []bool{false, true} {
		name := "status"
		if cleanup {
			name = "cleanup"
		}
		t.Run(name, func(t *testing.T) { joinWhileProbing(t, cleanup) })
	}
}

func joinWhileProbing(t *testing.T, cleanup bool) {
	p := newTestPool(t)
	mustAcquire(t, p, 1, 0)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var probes atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if !cleanup {
					p.ReadStatus(1)
				} else {
					p.RemoveDeadWaiters()
				}
				probes.Add(1)
			}
		}()
	}
	var joins atomic.Int64
	failed := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
				_, err := p.AcquireContext(ctx, 1)
				cancel()
				joins.Add(1)
				if !errors.Is(err, context.DeadlineExceeded) {
					select {
					case failed <- err:
					default:
					}
					return
				}
			}
		}()
	}
	select {
	case err := <-failed:
		stop.Store(true)
		wg.Wait()
		t.Fatalf("a waiter's Acquire failed after %d joins and %d status reads or cleanups: %v", joins.Load(), probes.Load(), err)
	case <-time.After(3 * time.Second):
		stop.Store(true)
		wg.Wait()
	}
	t.Logf("%d joins of the queue, %d status reads and cleanups: no failure", joins.Load(), probes.Load())
}
