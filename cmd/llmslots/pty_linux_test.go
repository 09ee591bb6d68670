package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// openPty opens a pseudo-terminal of cols columns and returns its master
// and its slave.
func openPty(t *testing.T, cols uint16) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("ptsname: %v", err)
	}
	if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: cols}); err != nil {
		m.Close()
		t.Fatalf("setting the window size: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("opening the slave: %v", err)
	}
	return m, s
}

// On a terminal 60 columns wide, the live waiting line is redrawn in place
// and never reaches the last column: no update adds a row, and the line is
// erased once the slot is taken.
func TestLiveLineFitsTheTerminal(t *testing.T) {
	const cols = 60
	e := newEnv(t)
	h := e.holder("--max", "1")

	master, slave := openPty(t, cols)
	defer master.Close()
	cmd := exec.Command(bin, "run", "--max", "1", "--", "true")
	cmd.Env = e.env
	cmd.Stderr = slave
	if err := cmd.Start(); err != nil {
		slave.Close()
		t.Fatal(err)
	}
	slave.Close()
	output := make(chan string, 1)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			b.Write(buf[:n])
			if err != nil { // EIO once the last slave descriptor is closed
				output <- b.String()
				return
			}
		}
	}()
	// Several redraws (one every 250 ms), then the slot frees.
	time.Sleep(6 * liveLineEvery)
	h.stdin.Close()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("the waiting run: %v", err)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the waiting run did not finish")
	}
	var out string
	select {
	case out = <-output:
	case <-time.After(5 * time.Second):
		t.Fatal("the terminal did not close")
	}

	if strings.ContainsAny(out, "\n") {
		t.Errorf("the waiting line added rows: %q", out)
	}
	const redraw = "\r\x1b[K"
	if !strings.HasPrefix(out, redraw) || !strings.HasSuffix(out, redraw) {
		t.Errorf("want each update drawn over the last and the line erased at the end, got %q", out)
	}
	var updates []string
	for _, l := range strings.Split(out, redraw) {
		if l != "" {
			updates = append(updates, l)
		}
	}
	if len(updates) < 3 {
		t.Fatalf("%d updates in %v, want several: %q", len(updates), 6*liveLineEvery, out)
	}
	for _, l := range updates {
		if n := utf8.RuneCountInString(l); n >= cols {
			t.Errorf("an update of %d columns on a %d-column terminal wraps: %q", n, cols, l)
		}
		if !strings.HasPrefix(l, "llmslots: waiting for a slot of ") || !strings.HasSuffix(l, "…") {
			t.Errorf("update %q is not the waiting line, cut", l)
		}
	}
}

// A codex shim on a terminal runs run --exec --detect auto: with stdout
// and stderr both the terminal there is nothing to watch, so codex
// replaces llmslots (its pid is run's) and has the terminal to itself (a
// program that stops only itself on Ctrl-Z gives the shell its prompt
// back). With stdout a pipe, run stays codex's parent, to watch it.
func TestDetectExecsOnATerminal(t *testing.T) {
	codex := filepath.Join(t.TempDir(), "codex")
	if err := os.WriteFile(codex, []byte("#!/bin/sh\necho \"pid $$\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	for _, onTerminal := range []bool{true, false} {
		master, slave := openPty(t, 80)
		cmd := exec.Command(bin, "run", "--exec", "--detect", "auto", "--max", "1", "--", codex)
		cmd.Env = e.env
		cmd.Stdout, cmd.Stderr = slave, slave
		var pipe strings.Builder
		if !onTerminal {
			cmd.Stdout = &pipe
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		var term strings.Builder
		read := make(chan struct{})
		go func() {
			defer close(read)
			buf := make([]byte, 4096)
			for {
				n, err := master.Read(buf)
				term.Write(buf[:n])
				if err != nil {
					return
				}
			}
		}()
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		<-read
		master.Close()
		out := term.String() + pipe.String()
		run := fmt.Sprintf("pid %d", cmd.Process.Pid)
		if strings.Contains(out, run) != onTerminal {
			t.Errorf("on a terminal %v: codex said %q, run was %s", onTerminal, strings.TrimSpace(out), run)
		}
	}
}
