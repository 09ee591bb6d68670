//go:build unix

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
)

func TestExitCodes(t *testing.T) {
	e := newEnv(t)
	unsafe := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(unsafe, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(unsafe, 0o777) // after Mkdir, so the umask cannot narrow it
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // a part of stderr; "" for none expected
	}{
		{"child succeeds", []string{"run", "--max", "1", "--", "sh", "-c", "exit 0"}, 0, ""},
		{"child's status", []string{"run", "--max", "1", "--", "sh", "-c", "exit 3"}, 3, ""},
		{"child's status 255", []string{"run", "--max", "1", "--", "sh", "-c", "exit 255"}, 255, ""},
		{"child killed by SIGKILL", []string{"run", "--max", "1", "--", "sh", "-c", "kill -KILL $$"}, 128 + 9, ""},
		{"child killed by SIGTERM", []string{"run", "--max", "1", "--", "sh", "-c", "kill -TERM $$"}, 128 + 15, ""},
		{"command not found", []string{"run", "--max", "1", "--", "no-such-command-llmslots"}, 127, "command not found"},
		{"command not executable", []string{"run", "--max", "1", "--", "/dev/null"}, 126, "permission denied"},
		{"no command", []string{"run", "--max", "1"}, 64, "no command given"},
		{"max 0", []string{"run", "--max", "0", "--", "true"}, 64, "--max must be 1..1024, got 0"},
		{"max too big", []string{"status", "--max", "1025"}, 64, "--max must be 1..1024"},
		{"negative wait", []string{"run", "--wait", "-1s", "--", "true"}, 64, "--wait must be >= 0"},
		{"bad duration", []string{"run", "--wait", "soon", "--", "true"}, 64, "--wait soon: not a duration"},
		{"unknown flag", []string{"run", "--frobnicate", "--", "true"}, 64, "unknown flag --frobnicate"},
		{"pool and dir", []string{"run", "--pool", "a", "--dir", "/tmp/x", "--", "true"}, 64, "give one of them"},
		{"relative dir", []string{"status", "--dir", "rel"}, 64, "--dir must be an absolute path"},
		{"bad pool name", []string{"run", "--pool", "Bad Name", "--", "true"}, 64, "pool name may hold only"},
		{"bad label", []string{"run", "--label", "a\tb", "--", "true"}, 64, "label must be"},
		{"unknown subcommand", []string{"frob"}, 64, "unknown subcommand"},
		{"no subcommand", []string{}, 64, "Usage:"},
		{"release without slot", []string{"release"}, 64, "--slot is required"},
		{"stray argument", []string{"status", "extra"}, 64, "unexpected argument"},
		{"shim with a path", []string{"shim", "a/b", "--bin-dir", t.TempDir()}, 64, "not a path"},
		{"unsafe directory", []string{"run", "--dir", unsafe, "--max", "1", "--", "true"}, 1, "writable by group or others"},
		{"relative LLMSLOTS_DIR", []string{"env", "LLMSLOTS_DIR=relative/dir"}, 1, `LLMSLOTS_DIR="relative/dir" is not an absolute path`},
		{"unknown LLMSLOTS_GROUP", []string{"env", "LLMSLOTS_GROUP=no-such-group-here"}, 1, "neither a group name nor a gid"},
		{"help", []string{"run", "--help"}, 0, ""},
		{"help subcommand", []string{"help", "release"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := e.env
			args := tt.args
			if len(args) == 2 && args[0] == "env" {
				// A bad environment, not a bad argument: exit 1.
				env = e.with(args[1])
				args = []string{"status"}
			}
			r := e.runEnv(env, "", args...)
			if r.code != tt.code {
				t.Fatalf("llmslots %q: exit %d, want %d\nstderr: %s", args, r.code, tt.code, r.stderr)
			}
			switch {
			case tt.stderr == "" && r.stderr != "":
				t.Errorf("unexpected stderr: %s", r.stderr)
			case !strings.Contains(r.stderr, tt.stderr):
				t.Errorf("stderr %q does not say %q", r.stderr, tt.stderr)
			}
			switch tt.code {
			case 64:
				if len(args) == 0 {
					break // no subcommand: the main usage follows
				}
				see := "; see llmslots " + args[0] + " --help\n"
				if args[0] == "frob" {
					see = "; see llmslots help\n"
				}
				if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, see) {
					t.Errorf("want one line ending %q, got %q", see, r.stderr)
				}
			case 1, 126, 127:
				if strings.Count(r.stderr, "\n") != 1 {
					t.Errorf("want one line on stderr, got %q", r.stderr)
				}
			case 0:
				if strings.HasSuffix(tt.name, "help") || strings.HasPrefix(tt.name, "help") {
					if !strings.Contains(r.stdout, "Usage: llmslots") || !strings.Contains(r.stdout, "Flags:") {
						t.Errorf("help on stdout: %q", r.stdout)
					}
				}
			}
		})
	}
}

// holder starts `llmslots run` holding a slot with a command that says
// "ready" and runs until its stdin closes.
func (e *testEnv) holder(args ...string) *proc {
	e.t.Helper()
	args = append(append([]string{"run"}, args...), "--", "sh", "-c", "echo ready; exec cat >/dev/null")
	p := e.start(args...)
	if l := p.line(); l != "ready" {
		e.t.Fatalf("holder said %q, want ready", l)
	}
	return p
}

func TestNoSlotExits75NamingHolders(t *testing.T) {
	e := newEnv(t)
	h := e.holder("--max", "1", "--label", "long job")

	r := e.run("run", "--max", "1", "--wait", "0", "--", "true")
	if r.code != 75 {
		t.Fatalf("exit %d, want 75; stderr %s", r.code, r.stderr)
	}
	if want := "pid " + strconv.Itoa(h.pid()) + " (long job)"; !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q does not name the holder %q", r.stderr, want)
	}

	r = e.run("run", "--max", "1", "--wait", "300ms", "--", "true")
	if r.code != 75 || r.took < 300*time.Millisecond {
		t.Fatalf("--wait 300ms: exit %d after %v, want 75 after >= 300ms; stderr %s", r.code, r.took, r.stderr)
	}
	// stderr is not a terminal: one line when the wait starts, one when it
	// ends.
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "waiting for a slot of "+e.dir+": 1/1 busy") ||
		!strings.Contains(lines[1], "no free slot") {
		t.Errorf("stderr while waiting: %q", r.stderr)
	}

	h.stdin.Close()
	if code := h.wait(); code != 0 {
		t.Fatalf("holder exited %d", code)
	}
	if r := e.run("run", "--max", "1", "--wait", "0", "--", "true"); r.code != 0 {
		t.Fatalf("after the holder: exit %d; %s", r.code, r.stderr)
	}
}

// A waiting run gets the slot as soon as the holder is done.
func TestWaitingRunGetsTheSlot(t *testing.T) {
	e := newEnv(t)
	h := e.holder("--max", "1")
	w := e.start("run", "--max", "1", "--wait", "20s", "--", "echo", "got it")
	h.stdin.Close()
	if l := w.line(); l != "got it" {
		t.Fatalf("waiter said %q", l)
	}
	if code := w.wait(); code != 0 {
		t.Fatalf("waiter exited %d", code)
	}
}

func readStatus(t *testing.T, e *testEnv, max int, args ...string) llmslots.Status {
	t.Helper()
	r := e.run(append([]string{"status", "--json", "--max", strconv.Itoa(max)}, args...)...)
	if r.code != 0 {
		t.Fatalf("status: exit %d: %s", r.code, r.stderr)
	}
	var st llmslots.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	return st
}

// The slot is handed to the command: SIGKILL llmslots and the command
// keeps the slot; once the command exits too, the slot is free.
func TestSlotOutlivesKilledRun(t *testing.T) {
	e := newEnv(t)
	p := e.start("run", "--max", "1", "--", "sh", "-c", "echo $$; exec cat")
	child, err := strconv.Atoi(p.line())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(); code != 128+9 {
		t.Fatalf("llmslots exited %d, want 137", code)
	}
	if err := syscall.Kill(child, 0); err != nil {
		t.Fatalf("the command died with llmslots: %v", err)
	}

	st := readStatus(t, e, 1)
	if st.Slots[0].State != llmslots.StateHeld || st.Active != 1 {
		out, _ := e.sh("ls -l /proc/" + strconv.Itoa(child) + "/fd; cat /proc/" + strconv.Itoa(child) + "/cmdline")
		t.Fatalf("with llmslots dead and its command alive, slot 0 is %s; want held\n%s", st.Slots[0].State, out)
	}
	if r := e.run("run", "--max", "1", "--wait", "0", "--", "true"); r.code != 75 {
		t.Fatalf("a second run got the slot (exit %d) while the command holds it", r.code)
	}

	p.stdin.Close() // cat exits
	p.expectEOF()   // ...and closes its stdout
	// The lock goes with cat's last descriptor: a wait covers the instant
	// between its stdout closing and its slot descriptor closing.
	r := e.run("run", "--max", "1", "--wait", "5s", "--", "true")
	if r.code != 0 || r.took > 2*time.Second {
		t.Fatalf("after the command exited: exit %d after %v; %s", r.code, r.took, r.stderr)
	}
}

func TestSignalsAreForwarded(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			e := newEnv(t)
			p := e.start("run", "--max", "1", "--", e.helper(), "trap")
			if l := p.line(); l != "ready" {
				t.Fatalf("helper said %q", l)
			}
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if l, want := p.line(), "got "+sig.String(); l != want {
				t.Fatalf("the command said %q, want %q", l, want)
			}
			if code := p.wait(); code != 7 {
				t.Fatalf("llmslots exited %d, want the command's 7", code)
			}
		})
	}
	t.Run("command dies of it", func(t *testing.T) {
		e := newEnv(t)
		h := e.holder("--max", "1")
		h.cmd.Process.Signal(syscall.SIGTERM)
		if code := h.wait(); code != 128+15 {
			t.Fatalf("llmslots exited %d, want 143", code)
		}
		if st := readStatus(t, e, 1); st.Slots[0].State != llmslots.StateFree {
			t.Fatalf("after the command died, slot 0 is %s; want free", st.Slots[0].State)
		}
	})
}

// helper returns the helper program's path.
func (e *testEnv) helper() string {
	for _, kv := range e.env {
		if v, ok := strings.CutPrefix(kv, "HELPER="); ok {
			return v
		}
	}
	e.t.Fatal("no HELPER")
	return ""
}

// A signal while waiting for a slot ends the wait: exit 128+N, no command.
func TestSignalWhileWaiting(t *testing.T) {
	e := newEnv(t)
	e.holder("--max", "1")
	w := e.start("run", "--max", "1", "--", "echo", "should not run")
	// stderr is not a terminal: one line says the wait started.
	if l := w.errLine(); !strings.Contains(l, "waiting for a slot") {
		t.Fatalf("waiter's stderr: %q", l)
	}
	w.cmd.Process.Signal(syscall.SIGTERM)
	if code := w.wait(); code != 128+15 {
		t.Fatalf("waiting llmslots exited %d on SIGTERM, want 143", code)
	}
	w.expectEOF()
}

func TestStatusJSON(t *testing.T) {
	e := newEnv(t)
	h := e.holder("--max", "2", "--label", "review #42")
	st := readStatus(t, e, 2)
	if st.Dir != e.dir || st.Max != 2 || st.Active != 1 || st.Free != 1 || st.Stale != 0 ||
		len(st.PIDs) != 1 || st.PIDs[0] != h.pid() || len(st.Slots) != 2 {
		t.Fatalf("status: %+v", st)
	}
	s := st.Slots[0]
	if s.SlotID != 0 || s.State != llmslots.StateHeld || s.PID != h.pid() || s.Label != "review #42" ||
		s.Command != "sh -c echo ready; exec cat >/dev/null" || s.Path != filepath.Join(e.dir, "slot-0.lock") ||
		time.Since(s.Since) > time.Minute || s.AgeSecs < 0 {
		t.Errorf("slot 0: %+v", s)
	}
	if f := st.Slots[1]; f.State != llmslots.StateFree || f.PID != 0 {
		t.Errorf("slot 1: %+v", f)
	}
	// The raw JSON has the library's field names.
	r := e.run("status", "--json", "--max", "2")
	for _, key := range []string{`"dir"`, `"max"`, `"active"`, `"free"`, `"stale"`, `"pids"`, `"slots"`, `"slot_id"`, `"state"`, `"age_secs"`, `"label"`, `"command"`, `"path"`} {
		if !strings.Contains(r.stdout, key) {
			t.Errorf("status --json lacks %s", key)
		}
	}
	// And the table.
	r = e.run("status", "--max", "2")
	if !strings.Contains(r.stdout, "SLOT") || !strings.Contains(r.stdout, "review #42") ||
		!strings.Contains(r.stdout, strconv.Itoa(h.pid())) || !strings.Contains(r.stdout, "1 held, 1 free") {
		t.Errorf("status table:\n%s", r.stdout)
	}
	// A named pool is a separate directory.
	if st := readStatus(t, e, 2, "--pool", "codex"); st.Dir != filepath.Join(e.dir, "codex") || st.Active != 0 {
		t.Errorf("pool codex: %+v", st)
	}
}

func TestHelpForEverySubcommand(t *testing.T) {
	e := newEnv(t)
	for _, c := range commands {
		r := e.run(c.name, "--help")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: llmslots "+c.name) || r.stderr != "" {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", c.name, r.code, r.stdout, r.stderr)
		}
	}
}

func TestMaxExplains(t *testing.T) {
	e := newEnv(t)
	r := e.runEnv(e.with("LLMSLOTS_MAX=3"), "", "max", "--json")
	var c llmslots.Concurrency
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil || r.code != 0 {
		t.Fatalf("max --json: exit %d, %v: %q", r.code, err, r.stdout)
	}
	if c.Max != 3 || c.Source != llmslots.EnvMax || c.CPUs < 1 {
		t.Errorf("max with LLMSLOTS_MAX=3: %+v", c)
	}
	r = e.run("max")
	if r.code != 0 || !strings.Contains(r.stdout, "CPUs:") || !strings.Contains(r.stdout, "LLMSLOTS_MAX: unset") {
		t.Errorf("max: exit %d, %q", r.code, r.stdout)
	}
	// run and status take their default max from the same place.
	if st := readStatusEnv(t, e, e.with("LLMSLOTS_MAX=3")); st.Max != 3 {
		t.Errorf("status with LLMSLOTS_MAX=3 read max %d", st.Max)
	}
}

func readStatusEnv(t *testing.T, e *testEnv, env []string) llmslots.Status {
	t.Helper()
	r := e.runEnv(env, "", "status", "--json")
	var st llmslots.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 {
		t.Fatalf("status --json: exit %d, %v: %q", r.code, err, r.stdout)
	}
	return st
}

// The busy message names every reason no slot could be had: the live
// holder of one slot, and the other slot's path, where something no
// llmslots process makes (a symlink) sits.
func TestBusyMessageNamesHoldersAndUnusableSlots(t *testing.T) {
	e := newEnv(t)
	planted := filepath.Join(e.dir, "slot-0.lock")
	if err := os.Symlink(filepath.Join(t.TempDir(), "elsewhere"), planted); err != nil {
		t.Fatal(err)
	}
	h := e.holder("--max", "2", "--label", "long job")
	r := e.run("run", "--max", "2", "--wait", "0", "--", "true")
	if r.code != 75 {
		t.Fatalf("exit %d, want 75; stderr %q", r.code, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("want the busy message on one line, got %q", r.stderr)
	}
	for _, want := range []string{
		"pid " + strconv.Itoa(h.pid()) + " (long job)",
		planted + " is a symbolic link",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("busy message %q does not say %q", r.stderr, want)
		}
	}
	if strings.Contains(r.stderr, "unknown") {
		t.Errorf("busy message %q calls a holder unknown", r.stderr)
	}
}
