package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file follows the core command's cmd/llmslots/throttled.go, which
// lives in another module: the two commands watch a command's stderr the
// same way. A fix to one belongs in the other.

// reporter is the slot a throttleWatch reports on: an etcdslots.Guard.
type reporter interface {
	Throttled(retryAfter time.Duration) error
}

// throttleWatch reports, for run --throttled-on and --throttled-exit, that
// the command was throttled: a line of its stderr matched re, or it exited
// with exitCode. The report (Guard.Throttled) is made once per run, at the
// first sign, while the command may still run: every other process of the
// pool stops being granted slots at once.
type throttleWatch struct {
	re       *regexp.Regexp // nil: stderr is not watched
	exitCode int            // -1: the exit status is not watched
	g        reporter
	stderr   io.Writer // where a failed report is said

	once sync.Once
	hint time.Duration // parsed from the matching line; 0 if none
	done chan struct{} // closed once stderr is fully copied
}

// maxLine bounds the line kept for matching: a longer line is matched in
// pieces of this size (the bytes still all reach the terminal).
const maxLine = 64 << 10

// attach makes cmd's stderr a file of its own, unlinked at once, which a
// goroutine copies to stderr as it grows while it matches the lines
// against re. Not a pipe: once llmslots-etcd is killed, a pipe that no one
// reads kills the command (SIGPIPE) at its next write, while the command
// keeps its slot, and its output is lost; a file outlives llmslots-etcd. The
// command sees a regular file on its stderr, not a terminal; its output
// reaches stderr byte for byte, within tailMax. exited must be closed
// once the command has exited: the copy then takes what is left and ends.
// The returned function closes the parent's copy of the command's side;
// call it after cmd.Start.
func (w *throttleWatch) attach(cmd *exec.Cmd, stderr io.Writer, exited <-chan struct{}) (started func(), err error) {
	w.done = make(chan struct{})
	if w.re == nil {
		close(w.done)
		return func() {}, nil
	}
	tmp, err := os.CreateTemp("", "llmslots-etcd-stderr-*")
	if err != nil {
		return nil, err
	}
	name := tmp.Name()
	tmp.Close()
	// Two open files, so that reading does not move the command's offset.
	wf, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		os.Remove(name)
		return nil, err
	}
	// Writable, to free what was copied (freeCopied). Unix: the file is
	// gone once both are closed (Windows: removed at the end).
	rf, err := os.OpenFile(name, os.O_RDWR, 0)
	os.Remove(name)
	if err != nil {
		wf.Close()
		return nil, err
	}
	cmd.Stderr = wf
	go func() {
		defer close(w.done)
		defer os.Remove(name)
		defer rf.Close()
		buf := make([]byte, 32<<10)
		var line []byte
		var copied, freed int64
		wait, last := tailMin, false
		for {
			n, err := rf.Read(buf)
			if n > 0 {
				stderr.Write(buf[:n])
				line = w.scan(append(line, buf[:n]...))
				wait = tailMin
				if copied += int64(n); copied-freed >= 1<<20 {
					freeCopied(rf, copied)
					freed = copied
				}
				continue
			}
			if err != nil && err != io.EOF || last {
				break
			}
			select {
			case <-exited:
				last = true // one more read takes what it wrote before it exited
			case <-time.After(wait):
				wait = min(2*wait, tailMax)
			}
		}
		if len(line) > 0 {
			w.match(line)
		}
	}()
	return func() { wf.Close() }, nil
}

// How often the copy looks for more of the command's stderr: soon after
// some came, less often as it stays quiet.
const tailMin, tailMax = 10 * time.Millisecond, 200 * time.Millisecond

// scan matches every complete line of data and returns what is left.
func (w *throttleWatch) scan(data []byte) []byte {
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if len(data) >= maxLine {
				w.match(data)
				return data[:0]
			}
			return data
		}
		w.match(data[:i])
		data = data[i+1:]
	}
}

func (w *throttleWatch) match(line []byte) {
	if w.re.Match(line) {
		w.report(parseRetryHint(string(line)))
	}
}

// report makes the one report of this run.
func (w *throttleWatch) report(hint time.Duration) {
	w.once.Do(func() {
		w.hint = hint
		if err := w.g.Throttled(hint); err != nil {
			fmt.Fprintf(w.stderr, "%s: %v\n", name, err)
		}
	})
}

// finish is called once the command has exited with status: it waits a
// little for the rest of stderr to be copied (what a descendant writes
// after the command exited stays in the file, not copied), and reports a
// watched exit status.
func (w *throttleWatch) finish(status int) {
	select {
	case <-w.done:
	case <-time.After(time.Second):
	}
	if w.exitCode >= 0 && status == w.exitCode {
		w.report(0)
	}
}

// retryHint finds the provider's "when to try again" in a message:
// "Please try again in 20s", "try again in 1 hour 20 minutes", "retry
// after 30 seconds", "Retry-After: 5", "try again in 120ms". A time of day
// ("try again at 3:05 PM") is no hint.
var (
	retryPhrase = regexp.MustCompile(`(?i)(?:try again|retry(?:ing)?)(?:\s+(?:in|after))\s+`)
	retryAfter  = regexp.MustCompile(`(?i)retry-after(?:-ms)?:\s*(\d+)`)
	retryPart   = regexp.MustCompile(`(?i)^\s*(?:and\s+|,\s*)?(\d+(?:\.\d+)?)\s*(ms|milliseconds?|msecs?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)\b`)
)

// parseRetryHint returns the hint in line, 0 if it has none.
func parseRetryHint(line string) time.Duration {
	if m := retryAfter.FindStringSubmatch(line); m != nil {
		n, err := strconv.Atoi(m[1])
		if err == nil && n >= 0 {
			if strings.Contains(strings.ToLower(m[0]), "-ms") {
				return time.Duration(n) * time.Millisecond
			}
			return time.Duration(min(n, 86400)) * time.Second
		}
	}
	loc := retryPhrase.FindStringIndex(line)
	if loc == nil {
		return 0
	}
	rest := line[loc[1]:]
	var total time.Duration
	for {
		m := retryPart.FindStringSubmatchIndex(rest)
		if m == nil {
			break
		}
		n, err := strconv.ParseFloat(rest[m[2]:m[3]], 64)
		if err != nil || n > 1e6 {
			break
		}
		unit := strings.ToLower(rest[m[4]:m[5]])
		var u time.Duration
		switch {
		case strings.HasPrefix(unit, "ms"), strings.HasPrefix(unit, "milli"):
			u = time.Millisecond
		case strings.HasPrefix(unit, "s"):
			u = time.Second
		case strings.HasPrefix(unit, "m"):
			u = time.Minute
		case strings.HasPrefix(unit, "h"):
			u = time.Hour
		case strings.HasPrefix(unit, "d"):
			u = 24 * time.Hour
		}
		total += time.Duration(n * float64(u))
		rest = rest[m[1]:]
	}
	return min(total, 24*time.Hour)
}
