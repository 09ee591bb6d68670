package llmslots

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/fdpass"
)

// A process whose descriptor of an inherited slot is gone nests in it only
// if the slot's taker is its ancestor: a process that got the taker's pid
// after the taker died is not (issue 22, item 21: before, /proc/locks
// still named the dead taker's pid, and the stranger's child nested beside
// the taker's own child on a max of 1). The pid is reused on purpose,
// through ns_last_pid, which needs root.
func TestReusedPidIsNoAncestor(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("choosing a pid (ns_last_pid) needs root")
	}
	p := newTestPool(t)
	h := startHelper(t, "handon", p.Dir(), 1)
	child, err := strconv.Atoi(strings.TrimPrefix(h.line(), "child "))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	taker := h.pid()
	h.kill() // the sleeping child keeps slot 0
	// Start times count clock ticks (10 ms): a pid can only be reused
	// within one after 32768 forks, except as here, on purpose.
	time.Sleep(50 * time.Millisecond)
	for try := 0; ; try++ {
		// The stranger waits for a line before starting its child, so that
		// one with the wrong pid is stopped before it does anything.
		cmd := helperCmd(os.Args[0], "inherit-child", p.Dir(), 1, fdpass.EnvVar+"=fd=3;slot=0;dir="+p.Dir())
		cmd.Path, cmd.Args = "/bin/sh", []string{"sh", "-c", `read go && "$0" -test.run='^$'; true`, os.Args[0]}
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(taker-1)), 0); err != nil {
			t.Skipf("cannot choose the next pid: %v", err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if cmd.Process.Pid != taker {
			cmd.Process.Kill()
			cmd.Wait()
			if try == 100 {
				t.Fatalf("no process got pid %d in 100 tries", taker)
			}
			continue
		}
		stdin.Write([]byte("go\n"))
		said, _ := bufio.NewReader(stdout).ReadString('\n')
		cmd.Wait()
		if said = strings.TrimSpace(said); said != "busy" {
			t.Fatalf("the child of a process with the dead taker's pid said %q, want busy", said)
		}
		return
	}
}
