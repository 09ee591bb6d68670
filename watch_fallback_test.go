//go:build linux

package llmslots

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Any inotify failure falls back to polling: with the user's inotify
// watches exhausted (a private user namespace whose max_inotify_watches is
// 0 or 1), a waiter, the head of the line included, still gets the slot
// when it frees. Before, it failed at once with "inotify_add_watch ...: no
// space left on device".
func TestExhaustedInotifyWatchesFallBackToPolling(t *testing.T) {
	if err := exec.Command("unshare", "-U", "-r", "true").Run(); err != nil {
		t.Skipf("no user namespaces here: %v", err)
	}
	for _, limit := range []int{0, 1} {
		t.Run("max_inotify_watches="+strconv.Itoa(limit), func(t *testing.T) {
			p := newTestPool(t)
			holder := mustAcquire(t, p, 1, 0)
			var waiters []*helper
			for i := range 2 {
				cmd := helperCmd(os.Args[0], "hold", p.Dir(), 1)
				limited := exec.Command("unshare", append([]string{"-U", "-r", "sh", "-c",
					`echo "$0" > /proc/sys/user/max_inotify_watches && exec "$@"`, strconv.Itoa(limit), cmd.Path}, cmd.Args[1:]...)...)
				limited.Env = cmd.Env
				waiters = append(waiters, launchHelper(t, limited))
				// One at a time, so that the line's order is the start order.
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					if st, _ := p.ReadStatus(1); len(st.Waiting) == i+1 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("the waiters did not queue")
					}
				}
			}
			holder.Release()
			for i, w := range waiters {
				if w.held() != 0 {
					t.Fatalf("waiter %d did not take slot 0", i)
				}
				w.stdin.Close()
			}
		})
	}
}

// A pool reached through a symbolic link is waited on with events, on the
// directory the link leads to. Before, every contended acquire through the
// link failed with "inotify_add_watch LINK: not a directory".
func TestPoolThroughASymlinkIsWaitedOnWithEvents(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	p, err := NewPool(link, WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	if err != nil {
		t.Fatal(err)
	}
	g := mustAcquire(t, p, 1, 0)
	time.AfterFunc(100*time.Millisecond, func() { g.Release() })
	g2, err := p.Acquire(1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	g2.Release()
	if bytes.Contains(logged.Bytes(), []byte("polling")) {
		t.Errorf("waited by polling through the link:\n%s", logged.String())
	}
}
