package llmslots

import (
	"os"
	"testing"

	"github.com/llmslots/llmslots/internal/watch"
)

// LLMSLOTS_TEST_PORTABLE=1 runs the tests, and the helpers they start, on
// the portable path: waiting on locks and no spares, exactly as macOS and
// the BSDs do (go test ./... with it set runs the whole suite that way).
func init() { watch.ForcePortable = os.Getenv("LLMSLOTS_TEST_PORTABLE") != "" }

// Where events cannot be had (off Linux, on network filesystems, past
// inotify's per-user limit) waiters wait on the locks themselves, and keep
// their order and their crash safety. The queue tests run again that way.
func TestQueueOnThePortablePath(t *testing.T) {
	watch.ForcePortable = true
	defer func() { watch.ForcePortable = false }()
	t.Run("order", TestGoroutinesQueueInOrder)
	t.Run("cancel", TestCancelledAndTimedOutWaitersLeaveTheQueue)
	// Helper processes read the same switch from the environment.
	t.Setenv("LLMSLOTS_TEST_PORTABLE", "1")
	t.Run("arrival_order", TestWaitersAreServedInArrivalOrder)
	t.Run("killed_waiter", TestKilledWaiterNeverBlocksTheQueue)
}
