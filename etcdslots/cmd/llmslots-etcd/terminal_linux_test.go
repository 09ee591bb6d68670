package main

import (
	"errors"
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

// run on a terminal, as a shell's foreground job: the command, in a
// process group of its own, is made the terminal's foreground group, so
// it reads the terminal (a background group would be stopped by SIGTTIN,
// and run would wait for it forever) and the terminal's Ctrl-C reaches
// it (run exits 130, the command's status).
func TestCommandOwnsTheTerminal(t *testing.T) {
	addr := etcdAddr(t)
	master, slave := openPty(t)
	defer master.Close()
	cmd := exec.Command(self(t), "run", "--etcd", addr, "--pool", poolName(t), "--max", "1", "--",
		"sh", "-c", `echo ready; read line; echo "got $line"; exec sleep 30`)
	cmd.Env = env(t)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// A session of its own with the terminal as its controlling one: run
	// is in the terminal's foreground group, as a shell puts a job.
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
				t.Fatalf("the terminal never showed %q (foreground group %d, run's pid %d); it shows %q", what, fg, cmd.Process.Pid, out)
			}
		}
	}
	waitFor("ready")
	master.Write([]byte("hi\n"))
	waitFor("got hi")
	master.Write([]byte{0x03}) // Ctrl-C
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("run after Ctrl-C: %v; want exit 130; terminal: %q", err, out)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Ctrl-C did not end the command; terminal: %q", out)
	}
}
