package llmslots

import (
	"os"
	"testing"

	"github.com/llmslots/llmslots/internal/watch"
)

// Helpers poll when the test that started them does.
func init() { watch.ForcePolling = os.Getenv("LLMSLOTS_TEST_POLL") != "" }

// Where events cannot be had (off Linux, on network filesystems, past
// inotify's per-user limit) waiters poll, and keep their order and their
// crash safety. The queue tests run again that way.
func TestQueueWhilePolling(t *testing.T) {
	watch.ForcePolling = true
	defer func() { watch.ForcePolling = false }()
	t.Run("order", TestGoroutinesQueueInOrder)
	t.Run("cancel", TestCancelledAndTimedOutWaitersLeaveTheQueue)
	// Processes poll too: helpers read the same switch from the environment.
	t.Setenv("LLMSLOTS_TEST_POLL", "1")
	t.Run("arrival_order", TestWaitersAreServedInArrivalOrder)
	t.Run("killed_waiter", TestKilledWaiterNeverBlocksTheQueue)
}
