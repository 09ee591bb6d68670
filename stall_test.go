//go:build unix

package llmslots

import (
	"syscall"
	"testing"
	"time"
)

// A stopped waiter (SIGSTOP; Ctrl-Z sends SIGTSTP, which stops the same
// way) at the head of the line keeps its ticket locked. The waiter behind
// it must get a freed slot within about a second (stallAfter), and the
// stopped one, once continued, is served as usual, without error. Before,
// the line waited for the stopped head until SIGCONT, with the slot free.
func TestStoppedHeadDoesNotHoldUpTheLine(t *testing.T) {
	for _, path := range []struct{ name, env string }{{"lock waits", ""}} {
		t.Run(path.name, func(t *testing.T) {
			p := newTestPool(t)
			holder := startHelper(t, "hold", p.Dir(), 1, path.env)
			if holder.held() != 0 {
				t.Fatal("holder did not take slot 0")
			}
			waitForWaiters := func(n int) {
				t.Helper()
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					st, err := p.ReadStatus(1)
					if err != nil {
						t.Fatal(err)
					}
					if len(st.Waiting) == n {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d waiting, want %d", len(st.Waiting), n)
					}
				}
			}
			head := startHelper(t, "hold", p.Dir(), 1, path.env)
			waitForWaiters(1)
			if err := head.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			defer head.cmd.Process.Signal(syscall.SIGCONT)
			second := startHelper(t, "hold", p.Dir(), 1, path.env)
			waitForWaiters(2)

			holder.stdin.Close() // release
			if l := holder.line(); l != "released" {
				t.Fatalf("holder: %q", l)
			}
			freed := time.Now()
			if second.held() != 0 {
				t.Fatal("the second waiter did not take slot 0")
			}
			idle := time.Since(freed)
			t.Logf("a free slot stayed idle %v behind the stopped head", idle.Round(time.Millisecond))
			if idle > 3*time.Second {
				t.Errorf("the slot stayed idle %v behind a stopped waiter; want about 1s", idle)
			}

			// The stopped waiter, continued, is served when the slot frees.
			head.cmd.Process.Signal(syscall.SIGCONT)
			second.stdin.Close()
			if l := second.line(); l != "released" {
				t.Fatalf("second: %q", l)
			}
			if head.held() != 0 {
				t.Fatal("the continued head did not take slot 0")
			}
			head.stdin.Close()
		})
	}
}
