package llmslots

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// wakeUps sums the voluntary context switches of every thread of pid: each
// is a time the process went to sleep, so between two readings it counts
// the wake-ups in between.
func wakeUps(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/status")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of pid %d: %v", pid, err)
	}
	n := 0
	for _, path := range tasks {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // a thread that ended
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				c, _ := strconv.Atoi(strings.TrimSpace(v))
				n += c
			}
		}
	}
	return n
}

// Idle waiters stay idle where inotify_init fails (a user whose inotify
// instances others use up; here a private user namespace whose
// max_inotify_instances is 0): waiting is on the locks themselves, so they
// make no more wake-ups than anywhere else, and are served in order when
// the slots free. Before, such a waiter fell back to polling: about 280
// wake-ups and 5 ms of CPU per waiter-second.
func TestIdleWaitersStayIdleWithoutInotify(t *testing.T) {
	if err := exec.Command("unshare", "-U", "-r", "true").Run(); err != nil {
		t.Skipf("no user namespaces here: %v", err)
	}
	noInotify := func(cmd *exec.Cmd) *exec.Cmd {
		limited := exec.Command("unshare", append([]string{"-U", "-r", "sh", "-c",
			`echo 0 > /proc/sys/user/max_inotify_instances && exec "$@"`, "sh", cmd.Path}, cmd.Args[1:]...)...)
		limited.Env = cmd.Env
		return limited
	}
	// The namespace does what the test says: inotify_init fails there.
	probe := launchHelper(t, noInotify(helperCmd(os.Args[0], "inotify", t.TempDir(), 1)))
	if l := probe.line(); !strings.HasPrefix(l, "inotify_init failed") {
		t.Fatalf("in the limited namespace: %q; want inotify_init to fail", l)
	}

	const max, n = 4, 6
	p := newTestPool(t)
	var holders []*Guard
	for range max {
		holders = append(holders, mustAcquire(t, p, max, 0))
	}
	var waiters []*helper
	for i := range n {
		waiters = append(waiters, launchHelper(t, noInotify(helperCmd(os.Args[0], "hold", p.Dir(), max))))
		waitForWaiters(t, p, max, i+1) // one at a time: the line's order is the start order
	}
	time.Sleep(200 * time.Millisecond) // each settles into its wait
	before := make([]int, n)
	for i, w := range waiters {
		before[i] = wakeUps(t, w.pid())
	}
	const window = 2 * time.Second
	time.Sleep(window)
	total := 0
	for i, w := range waiters {
		total += wakeUps(t, w.pid()) - before[i]
	}
	perWaiterSecond := float64(total) / (n * window.Seconds())
	t.Logf("%d waiters without inotify, behind %d holders: %.2f wake-ups per waiter-second", n, max, perWaiterSecond)
	if perWaiterSecond > 2 {
		t.Errorf("idle waiters woke %.2f times per waiter-second; want next to none", perWaiterSecond)
	}
	for _, g := range holders {
		g.Release()
	}
	for i, w := range waiters {
		if i < max {
			if id := w.held(); id < 0 {
				t.Fatalf("waiter %d got no slot", i)
			}
		}
	}
	for _, w := range waiters {
		w.stdin.Close()
	}
}

// A pool reached through a symbolic link is waited on like any other: the
// lock of the file the link leads to is what the waiter waits on.
func TestPoolThroughASymlinkIsWaitedOn(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(link)
	if err != nil {
		t.Fatal(err)
	}
	g := mustAcquire(t, p, 1, 0)
	var released atomic.Int64 // when the holder let go, in Unix nanoseconds
	released.Store(time.Now().UnixNano())
	time.AfterFunc(100*time.Millisecond, func() { released.Store(time.Now().UnixNano()); g.Release() })
	g2, err := p.Acquire(1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if late := time.Since(time.Unix(0, released.Load())); late > 100*time.Millisecond {
		t.Errorf("the waiter took the slot %v after its release; want at once", late)
	}
	g2.Release()
}

// inotifyHelper says whether this process can make an inotify instance.
func inotifyHelper() int {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		os.Stdout.WriteString("inotify_init failed: " + err.Error() + "\n")
		return 0
	}
	unix.Close(fd)
	os.Stdout.WriteString("inotify_init worked\n")
	return 0
}

func init() { helperModes["inotify"] = inotifyHelper }
