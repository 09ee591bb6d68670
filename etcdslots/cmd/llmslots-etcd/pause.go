package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/llmslots/llmslots"
	shared "github.com/llmslots/llmslots/internal/cli"
)

const pauseSynopsis = name + " pause --for D [--reason TEXT] [--etcd ENDPOINTS] [--pool NAME] [--prefix P] [--cacert FILE] [--cert FILE --key FILE] [--user NAME]"

const pauseAbout = `
Pauses the cluster pool by hand: no host is granted a slot until D has
passed, by the cluster's clock (etcd ends the pause: rounded up to whole
seconds, at least about 2 s), whatever this host's clock says. Holders keep
their slots and waiters their places in line; when the pause ends, grants
resume a tenth of it apart. The limit is kept. status shows it, with
--reason; resume ends it. The cluster not answering within 5 s: exit 69.`

// pauseCmd is "llmslots-etcd pause".
func pauseCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("pause")
	var cf clusterFlags
	cf.register(fs, "")
	d := fs.Duration("for", 0, "pause for `D` (e.g. 90s, 5m; at most 24h)")
	reason := fs.String("reason", "", "record `TEXT` as the reason, for status readers")
	if code, done := parseFlags(fs, args, stdout, stderr, pauseSynopsis, pauseAbout); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	}
	if msg := cf.check(fs); msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	if !shared.IsSet(fs, "for") {
		return usageError(fs, stderr, "--for is required: how long to pause, e.g. --for 10m")
	}
	if *d <= 0 || *d > 24*time.Hour {
		return usageError(fs, stderr, "--for must be a duration > 0 and at most 24h, got %v", *d)
	}
	return change(fs, &cf, stdout, stderr, func(p pool) (string, error) {
		if err := p.Pause(*d, *reason); err != nil {
			return "", err
		}
		return fmt.Sprintf("paused %s for %v, until about %s", p.Dir(), *d, time.Now().Add(*d).Format(time.TimeOnly)), nil
	})
}

const resumeSynopsis = name + " resume [--etcd ENDPOINTS] [--pool NAME] [--prefix P] [--cacert FILE] [--cert FILE --key FILE] [--user NAME]"

const resumeAbout = `
Ends a pause of the cluster pool and forgets every throttle report: its
limit is --max again. The cluster not answering within 5 s: exit 69.`

// resumeCmd is "llmslots-etcd resume".
func resumeCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("resume")
	var cf clusterFlags
	cf.register(fs, "")
	if code, done := parseFlags(fs, args, stdout, stderr, resumeSynopsis, resumeAbout); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	}
	if msg := cf.check(fs); msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	return change(fs, &cf, stdout, stderr, func(p pool) (string, error) {
		if err := p.Resume(); err != nil {
			return "", err
		}
		return "resumed " + p.Dir(), nil
	})
}

// pool is what pause and resume use of an etcdslots.Pool.
type pool interface {
	Dir() string
	Pause(d time.Duration, reason string) error
	Resume() error
}

// change connects, makes the change and says what it did.
func change(fs *flag.FlagSet, cf *clusterFlags, stdout, stderr io.Writer, do func(pool) (string, error)) int {
	cli, p, err := cf.connect(dialFor(5*time.Second), "")
	if err == nil {
		defer cli.Close()
		var msg string
		if msg, err = do(p); err == nil {
			fmt.Fprintln(stdout, msg)
			return exitOK
		}
	}
	switch {
	case errors.Is(err, llmslots.ErrInvalid):
		return usageError(fs, stderr, "%v", err)
	case unreachable(err):
		return failure(stderr, exitUnavailable, fmt.Errorf("the cluster at %s did not answer: %v", cf.endpoints, err))
	}
	return failure(stderr, exitError, err)
}

// throttleLines describe the throttle in effect, for status: a pause (by
// hand, with its reason, or after a report), a lowered limit, the last
// report. A state whose effects are over says nothing.
func throttleLines(t *llmslots.ThrottleStatus, max int) []string {
	if t == nil {
		return nil
	}
	var parts []string
	r := t.LastReport
	if !t.PausedUntil.IsZero() {
		s := fmt.Sprintf("paused until about %s (%v left, by the cluster's clock)", t.PausedUntil.Format(time.TimeOnly), time.Until(t.PausedUntil).Round(time.Second))
		if r != nil && (r.Kind == "pause" || r.Kind == "usage") {
			what := "paused by hand"
			if r.Kind == "usage" {
				what = "waiting for a usage limit to reset, reported"
			}
			s = what + " by pid " + fmt.Sprint(r.PID) + " on " + r.Host + ", " + strings.TrimPrefix(s, "paused ")
			if r.Reason != "" {
				s += ": " + r.Reason
			}
		}
		parts = append(parts, s)
	}
	if t.Limit < max {
		parts = append(parts, fmt.Sprintf("limit lowered to %d of %d", t.Limit, max))
	}
	if len(parts) > 0 && r != nil && r.Kind == "throttled" {
		s := fmt.Sprintf("last report by pid %d on %s", r.PID, r.Host)
		if r.Hint > 0 {
			s += fmt.Sprintf(", retry after %v", r.Hint)
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return nil
	}
	return []string{"throttled: " + strings.Join(parts, "; ")}
}
