//go:build linux

package llmslots

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	helperModes["orphan-reaper"] = orphanReaperHelper // start an orphan-parent, SIGKILL it, reap its child and say how it ended
	helperModes["orphan-parent"] = orphanParentHelper // hand a slot to a child whose stdout is a pipe, or $ORPHAN_OUT
}

// orphanChild writes a line, waits for a line on its stdin, and writes
// another: its second write comes once its parent is dead.
const orphanChild = `echo before; read line; echo after`

// orphanParentHelper is a CLI that runs its child with g.Command, as
// Guard.Command's doc shows, and captures the child's output: through a
// pipe it drains (what cmd.Output and a bytes.Buffer do), or, with
// ORPHAN_OUT set, in that file, which the child writes itself. It hands
// the child its own stdin, says "child PID" and waits to be killed.
func orphanParentHelper() int {
	p, max, ok := helperPool("orphan-parent")
	if !ok {
		return 1
	}
	g, err := p.Acquire(max, 10*time.Second)
	if err != nil {
		fmt.Println("error", err)
		return 3
	}
	cmd := g.Command("sh", "-c", orphanChild)
	cmd.Stdin = os.Stdin
	var captured bytes.Buffer
	if out := os.Getenv("ORPHAN_OUT"); out != "" {
		f, err := os.Create(out)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		cmd.Stdout = f
	} else {
		cmd.Stdout = &captured
	}
	if err := cmd.Start(); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("child", cmd.Process.Pid)
	cmd.Wait()
	return 0
}

// orphanReaperHelper makes itself the subreaper of its descendants (so
// the orphaned child becomes its own to wait for, and its exit status can
// be told), starts an orphan-parent, SIGKILLs it once its child runs, and
// then lets the child make its second write. It says "held N" (slots held
// once the parent is dead), "child exit N" or "child signal NAME", and
// "held after N" (once the child is gone).
func orphanReaperHelper() int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Println("error", err)
		return 1
	}
	p, max, ok := helperPool("orphan-reaper")
	if !ok {
		return 1
	}
	// The child's stdin, through its parent: a pipe of our own, so that
	// the parent's death does not close our end (as StdinPipe's Wait would).
	childIn, goLine, err := os.Pipe()
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	parent := helperCmd(os.Args[0], "orphan-parent", p.Dir(), max, "ORPHAN_OUT="+os.Getenv("ORPHAN_OUT"))
	parent.Stdin = childIn
	said, err := parent.StdoutPipe()
	if err == nil {
		err = parent.Start()
	}
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	childIn.Close()
	line, _ := bufio.NewReader(said).ReadString('\n')
	pid, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "child "))
	if err != nil {
		fmt.Println("error: the parent said", strconv.Quote(line))
		return 1
	}
	parent.Process.Kill()
	parent.Wait() // the child is ours now
	held := func() int {
		st, err := p.ReadStatus(max)
		if err != nil {
			fmt.Println("error", err)
		}
		return st.Active
	}
	fmt.Println("held", held())
	fmt.Fprintln(goLine, "go")
	goLine.Close()
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		fmt.Println("error", err)
		return 1
	}
	if ws.Signaled() {
		fmt.Println("child signal", unix.SignalName(ws.Signal()))
	} else {
		fmt.Println("child exit", ws.ExitStatus())
	}
	fmt.Println("held after", held())
	return 0
}

// A CLI killed while its child runs: the child, started with g.Command,
// keeps the slot, as Guard.Command promises. If the CLI captured the
// child's output through a pipe (cmd.Output, a bytes.Buffer, StdoutPipe),
// the child's next write has no reader and SIGPIPE kills it: the slot was
// held for nothing and the output is lost. Given a file instead, the child
// finishes, and all it wrote is in the file. Guard.Command's doc and
// examples/codex say which to do.
func TestOrphanedChildKeepsItsOutputOnlyInAFile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		file     bool
		wantEnd  string
		wantFile string
	}{
		{name: "pipe", wantEnd: "child signal SIGPIPE"},
		{name: "file", file: true, wantEnd: "child exit 0", wantFile: "before\nafter\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := ""
			if tc.file {
				out = filepath.Join(t.TempDir(), "child.out")
			}
			reaper := helperCmd(os.Args[0], "orphan-reaper", t.TempDir(), 1, "ORPHAN_OUT="+out)
			said, err := reaper.Output()
			t.Logf("the reaper said:\n%s", said)
			if err != nil {
				t.Fatalf("reaper: %v", err)
			}
			want := "held 1\n" + tc.wantEnd + "\nheld after 0\n"
			if string(said) != want {
				t.Errorf("the reaper said %q, want %q", said, want)
			}
			if tc.file {
				got, err := os.ReadFile(out)
				if err != nil || string(got) != tc.wantFile {
					t.Errorf("the child's file holds %q (%v), want %q", got, err, tc.wantFile)
				}
			}
		})
	}
}

// examples/codex -o FILE, SIGKILLed while its codex runs: codex, which
// writes to the file itself, finishes, and its review is in the file.
func TestCodexExampleKeepsTheReviewWhenKilled(t *testing.T) {
	w := newCodexWorld(t)
	// The fake codex, with a review on stdout just before it logs its end.
	talking := strings.Replace(fakeCodex, `echo "end`, `echo "review of: $2"`+"\n"+`echo "end`, 1)
	if err := os.WriteFile(filepath.Join(w.bin, "codex"), []byte(talking), 0o755); err != nil {
		t.Fatal(err)
	}
	prog := w.build("./examples/codex")
	out := filepath.Join(t.TempDir(), "review.md")
	c := w.command(1, prog, "-o", out, "the diff")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	w.waitFor("codex start", 10*time.Second, func(rs []run) bool { return len(rs) == 1 })
	c.Process.Kill()
	c.Wait()
	w.waitFor("codex end", 10*time.Second, func(rs []run) bool { return rs[0].end != 0 })
	if got, err := os.ReadFile(out); err != nil || string(got) != "review of: the diff\n" {
		t.Errorf("the review file holds %q (%v), want codex's review", got, err)
	}
}
