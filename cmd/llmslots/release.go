package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/internal/cli"
)

const releaseAbout = `
Frees slot N. A stale slot (its holder died) has its file removed. A held
slot is refused, naming the holder, unless --kill: then the holder gets
SIGTERM, SIGKILL after the grace period, and release returns once the lock
is free. On Linux the SIGKILL also reaches every other process that holds
the slot's lock (a command the holder handed the slot to).`

// releasePoll is how often release --kill looks whether the lock is free.
const releasePoll = 20 * time.Millisecond

// afterKill bounds the wait for the lock once everything was SIGKILLed.
const afterKill = 5 * time.Second

// releaseCmd is "llmslots release".
func releaseCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("release", "llmslots release --slot N [--kill] [--grace 10s] [--pool NAME | --dir DIR]", releaseAbout)
	var pf poolFlags
	pf.register(fs, "")
	slot := fs.Int("slot", 0, "the slot `N` to free (required)")
	kill := fs.Bool("kill", false, "stop the holder of a held slot: SIGTERM, then SIGKILL after --grace")
	grace := fs.Duration("grace", 10*time.Second, "with --kill, give the holder `D` to exit after SIGTERM before SIGKILL")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	case !cli.IsSet(fs, "slot"):
		return usageError(fs, stderr, "--slot is required")
	case *slot < 0 || *slot >= llmslots.MaxSlots:
		return usageError(fs, stderr, "--slot must be 0..%d, got %d", llmslots.MaxSlots-1, *slot)
	case *grace < 0:
		return usageError(fs, stderr, "--grace must be >= 0, got %v", *grace)
	}
	if msg := pf.check(fs); msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	pool, code, done := openPool(&pf, fs, stderr)
	if done {
		return code
	}
	before, err := slotStatus(pool, *slot)
	if err != nil {
		return failure(stderr, exitError, err)
	}
	err = pool.ForceRelease(*slot)
	switch {
	case err == nil:
		reportReleased(stdout, *slot, before)
		return exitOK
	case !errors.Is(err, llmslots.ErrHeld):
		return failure(stderr, exitError, err)
	case !*kill:
		return failure(stderr, exitError, fmt.Errorf("%w (or use --kill)", err))
	}
	if err := stopHolder(pool, *slot, before, *grace, stdout); err != nil {
		return failure(stderr, exitError, err)
	}
	return exitOK
}

// slotStatus reads one slot's status.
func slotStatus(pool *llmslots.Pool, id int) (llmslots.SlotStatus, error) {
	st, err := pool.ReadStatus(id + 1)
	if err != nil {
		return llmslots.SlotStatus{}, err
	}
	return st.Slots[id], nil
}

func reportReleased(w io.Writer, id int, before llmslots.SlotStatus) {
	if before.State == llmslots.StateStale {
		fmt.Fprintf(w, "slot %d: removed the file left by pid %d, which is gone\n", id, before.PID)
		return
	}
	fmt.Fprintf(w, "slot %d: free\n", id)
}

// stopHolder sends SIGTERM to the slot's recorded holder, SIGKILL after
// grace, and returns once the slot's lock is free (and its file removed).
func stopHolder(pool *llmslots.Pool, id int, held llmslots.SlotStatus, grace time.Duration, stdout io.Writer) error {
	host, _ := os.Hostname()
	switch {
	case held.PID <= 0:
		return fmt.Errorf("llmslots: slot %d is held, but its file names no pid to stop", id)
	case held.Host != "" && host != "" && held.Host != host:
		return fmt.Errorf("llmslots: slot %d is held by pid %d on host %s, not this host (%s); stop it there", id, held.PID, held.Host, host)
	case held.PID == os.Getpid():
		return fmt.Errorf("llmslots: slot %d is held by this process", id)
	}
	// Whom to ask to stop. Where the processes holding the lock can be
	// listed (Linux), they decide: the recorded holder if it is one of them
	// (llmslots run forwards SIGTERM to its command), else all of them (the
	// recorded holder died and handed the slot on, or its pid was reused by
	// a process that must not be signalled). Otherwise only a recorded pid
	// known to be the holder (Here: this host and pid namespace, the
	// recorded start time) is signalled: a pid from another container, or
	// one reused since, names an unrelated process.
	holders := lockHolders(held.Path)
	term := holders
	switch {
	case len(holders) == 0 && !held.Here:
		return fmt.Errorf("llmslots: slot %d is held, and pid %d it records is not a process of this host and pid namespace that can be told to be its holder (another container, or a pid reused since); stop the holder where it runs", id, held.PID)
	case len(holders) == 0 || slices.Contains(holders, held.PID):
		term = []int{held.PID}
	}
	fmt.Fprintf(stdout, "slot %d: sending SIGTERM to pid %s\n", id, joinInts(term))
	for _, pid := range term {
		if err := terminate(pid); err != nil {
			fmt.Fprintf(stdout, "slot %d: pid %d: %v\n", id, pid, err)
		}
	}
	if free, err := waitFree(pool, id, grace); free || err != nil {
		return err
	}
	// The grace may have let the holder exit and its pid be reused:
	// judge the recorded pid afresh before any SIGKILL.
	now, err := slotStatus(pool, id)
	if err != nil {
		return err
	}
	recordedHere := now.State == llmslots.StateHeld && now.PID == held.PID && now.Here
	kill := lockHolders(held.Path)
	switch {
	case len(kill) == 0 && !recordedHere:
		return fmt.Errorf("llmslots: slot %d is still held %v after SIGTERM, and pid %d is no longer known to be its holder; not sending SIGKILL", id, grace, held.PID)
	case len(kill) == 0:
		kill = []int{held.PID}
	case slices.Contains(term, held.PID) && recordedHere:
		kill = append(kill, held.PID)
	}
	kill = dedupe(kill)
	fmt.Fprintf(stdout, "slot %d: still held after %v; sending SIGKILL to pid %s\n", id, grace, joinInts(kill))
	for _, pid := range kill {
		forceKill(pid)
	}
	free, err := waitFree(pool, id, afterKill)
	if err != nil {
		return err
	}
	if !free {
		return fmt.Errorf("llmslots: slot %d is still held %v after SIGKILL: a process the holder handed the slot to keeps it (find it with: fuser %s)", id, afterKill, held.Path)
	}
	return nil
}

// waitFree tries ForceRelease until it succeeds (the lock was free and the
// file is gone) or d passes.
func waitFree(pool *llmslots.Pool, id int, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	for {
		err := pool.ForceRelease(id)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, llmslots.ErrHeld) {
			return false, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(releasePoll)
	}
}

func dedupe(ns []int) []int {
	seen := map[int]bool{}
	out := ns[:0:0]
	for _, n := range ns {
		if !seen[n] && n > 0 && n != os.Getpid() {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
