package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/llmslots/llmslots"
)

const cleanupAbout = `
Removes the slot files left by holders that died (stale slots) and lists
them. Stale slots need no cleanup to be used: the next acquirer reclaims
them. This is for tidy directories and reports. Held slots are never
touched. Tickets of waiters that died are removed too; a ticket this user
can neither read nor lock (another member's in a group's pool) cannot be
judged: it is left, and named with its owner and how to remove it.`

// cleanupCmd is "llmslots cleanup".
func cleanupCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("cleanup", "llmslots cleanup [--dry-run] [--max N] [--pool NAME | --dir DIR]", cleanupAbout)
	var pf poolFlags
	pf.register(fs, "the pool size `N`, as status takes it; stale slot files beyond it are removed too")
	dry := fs.Bool("dry-run", false, "list what would be removed, remove nothing")
	pool, st, code, done := poolStatus(fs, &pf, args, stdout, stderr)
	if done {
		return code
	}
	removed := 0
	for _, s := range st.Slots {
		if s.State != llmslots.StateStale {
			continue
		}
		what := fmt.Sprintf("slot %d (%s", s.SlotID, s.Path)
		if s.PID > 0 {
			what += fmt.Sprintf(", dead pid %d", s.PID)
		}
		if s.Command != "" {
			what += ": " + shorten(s.Command, 60)
		}
		what += ")"
		if *dry {
			fmt.Fprintln(stdout, "would remove "+what)
			removed++
			continue
		}
		err := pool.ForceRelease(s.SlotID)
		switch {
		case errors.Is(err, llmslots.ErrHeld):
			continue // taken by a live process since the scan: not stale now
		case err != nil:
			return failure(stderr, exitError, err)
		}
		fmt.Fprintln(stdout, "removed "+what)
		removed++
	}
	removed += cleanupWaiters(pool, *dry, stdout)
	left := unjudged(pool)
	for _, l := range left {
		fmt.Fprintln(stdout, l)
	}
	if removed == 0 && len(left) == 0 {
		fmt.Fprintf(stdout, "no stale slot files in %s\n", st.Dir)
	}
	return exitOK
}

// unjudged describes the tickets in line that this user can neither read
// nor lock: whether their waiters live cannot be told, so they count as
// waiting and cleanup leaves them. In a group's pool that is another
// member's ticket of mode 0600 (made by hand, or under a umask or tool
// that narrowed it); cleanup used to leave it without a word.
func unjudged(pool *llmslots.Pool) []string {
	st, err := pool.ReadStatus(1)
	if err != nil {
		return nil
	}
	var out []string
	for _, w := range st.Waiting {
		f, err := os.Open(w.Path)
		if err == nil {
			f.Close()
			continue
		}
		fi, statErr := os.Lstat(w.Path)
		if !errors.Is(err, fs.ErrPermission) || statErr != nil {
			continue
		}
		pid := w.PID
		if parts := strings.Split(filepath.Base(w.Path), "-"); pid == 0 && len(parts) == 4 {
			pid, _ = strconv.Atoi(parts[2]) // a ticket's name carries its maker's pid
		}
		waiter := "its waiter"
		if pid > 0 {
			waiter += fmt.Sprintf(" (pid %d)", pid)
		}
		out = append(out, fmt.Sprintf("left %s: a waiter's ticket of %s, mode %04o, which this user can neither read nor lock, so cannot tell whether %s still waits; it counts as waiting. If it does not, remove it: rm %s",
			printable(w.Path), owner(fi), fi.Mode().Perm(), waiter, shellQuote(printable(w.Path))))
	}
	return out
}

// cleanupWaiters removes (or with dry, lists) the tickets of waiters that
// died while waiting; it returns how many it listed.
func cleanupWaiters(pool *llmslots.Pool, dry bool, stdout io.Writer) int {
	if dry {
		st, err := pool.ReadStatus(1)
		if err != nil {
			return 0
		}
		for _, d := range st.DeadWaiters {
			fmt.Fprintf(stdout, "would remove dead waiter's ticket %s (pid %d)\n", d.Path, d.PID)
		}
		return len(st.DeadWaiters)
	}
	pids, err := pool.RemoveDeadWaiters()
	if err != nil {
		return 0
	}
	for _, pid := range pids {
		fmt.Fprintf(stdout, "removed dead waiter's ticket (pid %d)\n", pid)
	}
	return len(pids)
}
