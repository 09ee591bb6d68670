package main

import (
	"fmt"
	"io"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/internal/cli"
)

const pauseAbout = `
Pauses the pool by hand: no process is granted a slot until D has passed.
Holders keep their slots and waiters their places in line; when the pause
ends, grants resume one at a time. The pause is what a throttle report
(llmslots run --throttled-on, Guard.Throttled) makes, without lowering the
pool's limit. status shows it, with --reason; llmslots resume ends it.`

// pauseCmd is "llmslots pause".
func pauseCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("pause", "llmslots pause --for D [--reason TEXT] [--pool NAME | --dir DIR]", pauseAbout)
	var pf poolFlags
	pf.register(fs, "")
	d := fs.Duration("for", 0, "pause for `D` (e.g. 90s, 5m; at most 24h)")
	reason := fs.String("reason", "", "record `TEXT` as the reason, for status readers")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	}
	if msg := pf.check(fs); msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	if !cli.IsSet(fs, "for") {
		return usageError(fs, stderr, "--for is required: how long to pause, e.g. --for 10m")
	}
	if *d <= 0 || *d > 24*time.Hour {
		return usageError(fs, stderr, "--for must be a duration > 0 and at most 24h, got %v", *d)
	}
	if msg := checkText("--reason", *reason); msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	pool, code, done := openPool(&pf, fs, stderr)
	if done {
		return code
	}
	if err := pool.Pause(*d, *reason); err != nil {
		return failure(stderr, exitError, err)
	}
	fmt.Fprintf(stdout, "paused %s until %s\n", printable(pool.Dir()), time.Now().Add(*d).Format("15:04:05"))
	return exitOK
}

const resumeAbout = `
Ends a pause and forgets every throttle report: the pool's limit is its
max again. The pool's throttle state file is removed.`

// resumeCmd is "llmslots resume".
func resumeCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("resume", "llmslots resume [--pool NAME | --dir DIR]", resumeAbout)
	var pf poolFlags
	pf.register(fs, "")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	}
	if msg := pf.check(fs); msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	pool, code, done := openPool(&pf, fs, stderr)
	if done {
		return code
	}
	if err := pool.Resume(); err != nil {
		return failure(stderr, exitError, err)
	}
	fmt.Fprintf(stdout, "resumed %s\n", printable(pool.Dir()))
	return exitOK
}

// throttleLine describes a pool's throttling for status and the waiting
// line; "" when it has none.
func throttleLine(t *llmslots.ThrottleStatus, max int) string {
	if t == nil {
		return ""
	}
	if t.Error != "" {
		return "throttle state ignored: " + t.Error
	}
	var parts []string
	if !t.PausedUntil.IsZero() {
		parts = append(parts, fmt.Sprintf("paused until %s (%.1fs)", t.PausedUntil.Format("15:04:05"), time.Until(t.PausedUntil).Seconds()))
	}
	if t.Limit < max {
		parts = append(parts, fmt.Sprintf("limit lowered to %d of %d", t.Limit, max))
	}
	if r := t.LastReport; r != nil {
		s := fmt.Sprintf("last report %s ago by pid %d", time.Since(r.At).Round(time.Second), r.PID)
		if r.Kind == "pause" {
			s = fmt.Sprintf("paused by hand %s ago by pid %d", time.Since(r.At).Round(time.Second), r.PID)
		}
		if r.Hint > 0 && r.Kind != "pause" {
			s += fmt.Sprintf(", retry after %v", r.Hint)
		}
		if r.Reason != "" {
			s += ": " + r.Reason
		}
		parts = append(parts, s)
	}
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += "; "
		}
		out += p
	}
	return out
}
