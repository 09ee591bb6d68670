package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty opens a pseudo-terminal and returns its master and its slave.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("opening the slave: %v", err)
	}
	return m, s
}

// run on a terminal, as a job of a shell with job control (bash, set -m):
// the command, in a process group of its own, is made the terminal's
// foreground group, so it reads the terminal (a background group would be
// stopped by SIGTTIN, and run would wait for it forever). Ctrl-Z, which
// stops the command, stops run too, so the shell sees its job stopped (and
// does not wait on with the terminal held by a stopped group); fg lends
// the terminal to the command again and continues it; Ctrl-C reaches it
// (run exits 130, the command's status).
func TestCommandOwnsTheTerminal(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash here")
	}
	addr := etcdAddr(t)
	master, slave := openPty(t)
	defer master.Close()
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", `set -m; "$@"; echo "stopped $?"; fg; echo "run exit $?"`, "bash",
		self(t), "run", "--etcd", addr, "--pool", poolName(t), "--max", "1", "--",
		"sh", "-c", `echo ready; read line; echo "got $line"; read more; echo "then $more"; exec sleep 30`)
	cmd.Env = env(t)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// The shell leads a session of its own, the terminal its controlling
	// one; set -m puts run in a group of its own, in the foreground.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		slave.Close()
		t.Fatal(err)
	}
	slave.Close()
	out := &lockedBuffer{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil { // EIO once no slave descriptor is left
				return
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), what); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				fg, _ := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPGRP)
				t.Fatalf("the terminal never showed %q (its foreground group: %d); it shows %q", what, fg, out)
			}
		}
	}
	waitFor("ready")
	master.Write([]byte("hi\n"))
	waitFor("got hi")
	master.Write([]byte{0x1a}) // Ctrl-Z
	waitFor("stopped 148")     // 128+SIGTSTP: the shell saw its job stop
	master.Write([]byte("again\n"))
	waitFor("then again")
	master.Write([]byte{0x03}) // Ctrl-C
	waitFor("run exit 130")
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the shell did not exit; terminal: %q", out)
	}
}
