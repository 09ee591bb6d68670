package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	shared "github.com/llmslots/llmslots/internal/cli"
)

// runHolding runs CMD holding h, forwards signals to it, and stops it when
// the cluster slot is lost. It returns the exit status to report, and
// whether the slot was lost.
func runHolding(h *held, path string, argv []string, sigs <-chan os.Signal, grace time.Duration, stderr io.Writer, watch *throttleWatch) (int, bool) {
	g := h.cluster
	select {
	case <-g.Lost():
		// Lost before CMD began (this process was paused right after the
		// grant): do not start it.
		return failure(stderr, exitLost, fmt.Errorf("slot %d of %s was lost before %s started: %v", g.SlotID(), h.dir, argv[0], g.Err())), true
	default:
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	cmd.Env = append(os.Environ(),
		"LLMSLOTS_ETCD_SLOT="+strconv.Itoa(g.SlotID()),
		"LLMSLOTS_ETCD_TOKEN="+strconv.FormatInt(g.Token(), 10))
	if h.local != nil {
		if err := h.local.Inherit(cmd); err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return failure(stderr, exitError, err), false
		}
	}
	stopWithParent(cmd)
	lent := ownGroup(cmd) // the terminal, to CMD's group
	if lent {
		defer takeBack()
	}
	waited := make(chan struct{}) // closed once CMD has exited (or did not start)
	// A copy (throttleWatch.tee) that writes where the reader is gone
	// gets EPIPE, and tells the command, instead of this process dying of
	// SIGPIPE while the command writes on to a file nobody reads.
	brokenPipe := make(chan os.Signal, 1)
	signal.Notify(brokenPipe, syscall.SIGPIPE)
	defer signal.Stop(brokenPipe)
	started, err := watch.attach(cmd, os.Stdout, os.Stderr, waited)
	if err != nil && watch.re != nil {
		return failure(stderr, exitError, fmt.Errorf("cannot watch %s's output: %w", path, err)), false
	} else if err != nil {
		// --detect alone (perhaps by default): no reason not to run.
		fmt.Fprintf(stderr, "%s: warning: cannot watch %s's output for the provider's limits, so it runs unwatched: %v\n", name, path, err)
	}
	err = cmd.Start()
	started()
	if err != nil {
		close(waited)
		return failure(stderr, shared.ExecFailureCode(err), fmt.Errorf("cannot run %s: %w", path, err)), false
	}
	watch.started(cmd.Process)
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(waited)
	}()
	// Once the slot is lost, run returns when no process of CMD's group is
	// left (CMD gone is not enough: its children may have trapped the
	// SIGTERM that killed it), or killWait after the SIGKILL; pollGroup
	// looks every pollEvery.
	lost := g.Lost()
	var stopped <-chan struct{} // the command stopped on the terminal lent it
	if lent {
		stopped = stops(cmd.Process)
	}
	var kill, pollGroup, giveUp <-chan time.Time
	wasLost, exited := false, false
	pid := cmd.Process.Pid
	for done := false; !done; {
		select {
		case s := <-sigs:
			// CMD's group is not the one the terminal signals (run's, or,
			// when CMD's was made the foreground group, CMD's alone):
			// SIGINT too reaches CMD only through run.
			signalGroup(cmd.Process, s.(syscall.Signal))
		case <-stopped:
			suspend(cmd.Process)
		case <-lost:
			lost, wasLost = nil, true
			fmt.Fprintf(stderr, "%s: slot %d of %s may be lost (%v); stopping %s (pid %d) and every process of its group before the lease can expire: SIGTERM, SIGKILL after %v\n",
				name, g.SlotID(), h.dir, g.Err(), argv[0], pid, grace)
			if err := signalGroup(cmd.Process, syscall.SIGTERM); err != nil {
				signalGroup(cmd.Process, syscall.SIGKILL) // no SIGTERM here (Windows)
			}
			kill, pollGroup = time.After(grace), time.After(pollEvery)
		case <-kill:
			kill = nil
			fmt.Fprintf(stderr, "%s: %s's process group (pgid %d) still runs %v after SIGTERM; sending SIGKILL\n", name, argv[0], pid, grace)
			signalGroup(cmd.Process, syscall.SIGKILL)
			giveUp = time.After(killWait)
		case <-pollGroup:
			pollGroup = time.After(pollEvery)
			done = exited && groupGone(cmd.Process)
		case <-giveUp:
			fmt.Fprintf(stderr, "%s: a process of %s's group (pgid %d) is still there %v after SIGKILL (exited but not yet waited for by its parent, or stuck in the kernel)\n", name, argv[0], pid, killWait)
			done = true
		case <-waited:
			waited, exited = nil, true
			done = !wasLost || groupGone(cmd.Process)
		}
	}
	if wasLost {
		return exitLost, true
	}
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return failure(stderr, exitError, fmt.Errorf("waiting for %s: %w", path, waitErr)), false
	}
	status := shared.ExitStatus(cmd.ProcessState)
	watch.finish(status)
	return status, false
}
