package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/internal/cli"
)

const pauseAbout = `
Pauses the pool by hand: no process is granted a slot until D has passed.
Holders keep their slots and waiters their places in line; when the pause
ends, grants resume one at a time. The pause is what a throttle report
(llmslots run --throttled-on, Guard.Throttled) makes, without lowering the
pool's limit. status shows it, with --reason; llmslots resume ends it.
With --etcd ENDPOINTS (or LLMSLOTS_ETCD set, unless --dir is given) the
cluster pool --pool NAME is paused: llmslots runs "llmslots-etcd pause"
with the same arguments, and etcd's clock ends the pause.`

// pauseCmd is "llmslots pause".
func pauseCmd(args []string, stdout, stderr io.Writer) int {
	if wantsCluster(args) {
		return runCluster("pause", args, stderr)
	}
	fs := newFlags("pause", "llmslots pause --for D [--reason TEXT] [--pool NAME | --dir DIR | --etcd ENDPOINTS]", pauseAbout)
	var pf poolFlags
	pf.register(fs, "")
	fs.String("etcd", "", etcdUsage)
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
	fmt.Fprintf(stdout, "paused %s until %s\n", printable(pool.Dir()), clock(time.Now().Add(*d)))
	return exitOK
}

const resumeAbout = `
Ends a pause and forgets every throttle report: the pool's limit is its
max again. The pool's throttle state file is removed. With --etcd (or
LLMSLOTS_ETCD set, unless --dir is given), "llmslots-etcd resume" resumes
the cluster pool.`

// resumeCmd is "llmslots resume".
func resumeCmd(args []string, stdout, stderr io.Writer) int {
	if wantsCluster(args) {
		return runCluster("resume", args, stderr)
	}
	fs := newFlags("resume", "llmslots resume [--pool NAME | --dir DIR | --etcd ENDPOINTS]", resumeAbout)
	var pf poolFlags
	pf.register(fs, "")
	fs.String("etcd", "", etcdUsage)
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

// throttleLines describe what of a pool's throttling is in effect, one
// line each, for status: a pause by hand, with its reason; the pause and
// the lowered limit that throttle reports made, with the last report. An
// ended pause and a report whose effects are over are not shown: they
// used to be, under "throttled:", long after the pause ended.
func throttleLines(t *llmslots.ThrottleStatus, max int) []string {
	if t == nil {
		return nil
	}
	if t.Error != "" {
		return []string{"throttle state ignored: " + t.Error}
	}
	var lines, parts []string
	r := t.LastReport
	byHand, usage := r != nil && r.Kind == "pause", r != nil && r.Kind == "usage"
	if !t.PausedUntil.IsZero() {
		until := "until " + clock(t.PausedUntil) + " (" + left(t.PausedUntil) + " left)"
		if byHand || usage {
			s := fmt.Sprintf("paused by hand %s by pid %d", until, r.PID)
			if usage {
				s = fmt.Sprintf("waiting for a usage limit to reset %s, reported by pid %d", until, r.PID)
			}
			if r.Reason != "" {
				s += ": " + r.Reason
			}
			lines = append(lines, s)
		} else {
			parts = append(parts, "paused "+until)
		}
	}
	if t.Limit < max {
		parts = append(parts, fmt.Sprintf("limit lowered to %d of %d", t.Limit, max))
	}
	if len(parts) > 0 && r != nil && !byHand && !usage {
		s := fmt.Sprintf("last report %s ago by pid %d", time.Since(r.At).Round(time.Second), r.PID)
		if r.Hint > 0 {
			s += fmt.Sprintf(", retry after %v", r.Hint)
		}
		if r.Reason != "" {
			s += ": " + r.Reason
		}
		parts = append(parts, s)
	}
	if len(parts) > 0 {
		lines = append(lines, "throttled: "+strings.Join(parts, "; "))
	}
	return lines
}

// clock writes t as a time of day, with its date when that is not today:
// the end of a 24 h pause written "14:29:25" reads as now.
func clock(t time.Time) string {
	if t.Format(time.DateOnly) != time.Now().In(t.Location()).Format(time.DateOnly) {
		return t.Format(time.DateTime)
	}
	return t.Format(time.TimeOnly)
}

// left is how long until t, to a tenth of a second under a minute.
func left(t time.Time) string {
	d := time.Until(t)
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", max(d, 0).Seconds())
	}
	return d.Round(time.Second).String()
}
