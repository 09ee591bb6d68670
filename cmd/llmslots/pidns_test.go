//go:build linux

package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
)

// release --kill never signals a pid it cannot tell is the holder. Here
// the slot's lock is held by this test's process, which a fresh pid
// namespace (another container sharing the pool) cannot see, and the
// record names pid 2: in that namespace, an unrelated `sleep`. Before the
// fix, release --kill found no lock holder there and SIGTERMed and
// SIGKILLed pid 2 of its own namespace. Two records are tried: one from
// another namespace, and one from this namespace whose start time shows
// that pid 2 was reused.
func TestReleaseKillNeverSignalsAStranger(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare --pid")
	}
	if err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("no pid namespaces here: %v", err)
	}
	for _, c := range []struct{ name, pidns, start string }{
		{"another pid namespace", "4026531999", "12345"},
		{"pid reused since", "$(readlink /proc/self/ns/pid | tr -dc 0-9)", "1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			p, err := llmslots.NewPool(e.dir)
			if err != nil {
				t.Fatal(err)
			}
			g, err := p.Acquire(1, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Release()
			host, _ := os.Hostname()
			// In the new namespace: sh is pid 1, the sleep pid 2.
			script := `sleep 30 & sleep 0.1
printf 'pid=2\nhost=` + host + `\nstart=` + c.start + `\npidns=%s\n' "` + c.pidns + `" > "$LLMSLOTS_DIR/slot-0.lock"
"$LLMSLOTS" release --slot 0 --kill --grace 1s; echo "release exit $?"
kill -0 2 && echo "sleep alive"; kill 2`
			cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script)
			cmd.Env = e.env
			done := make(chan struct{})
			var out []byte
			go func() { out, _ = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				t.Fatal("the namespace's script did not finish")
			}
			t.Logf("%s", out)
			if !strings.Contains(string(out), "sleep alive") {
				t.Errorf("the unrelated pid 2 was killed:\n%s", out)
			}
			if !strings.Contains(string(out), "release exit 1") {
				t.Errorf("release --kill did not refuse:\n%s", out)
			}
			if !g.Held() {
				t.Error("the real holder lost its slot")
			}
		})
	}
}
