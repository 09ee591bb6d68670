package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/llmslots/llmslots"
	shared "github.com/llmslots/llmslots/internal/cli"
)

// This file follows the core command's cmd/llmslots/throttled.go, which
// lives in another module: the two commands watch a command's output the
// same way. A fix to one belongs in the other.

// reporter is the slot a throttleWatch reports on: an etcdslots.Guard.
type reporter interface {
	ReportLimit(l llmslots.Limit) error
}

// throttleWatch reports, for run --detect, --throttled-on and
// --throttled-exit, that the command met a provider's limit: a line of
// its output in which llmslots.DetectLimit finds one, a line of its stderr
// that matches re, or its exit with exitCode. Each kind of limit is
// reported once per run (Guard.ReportLimit), at the first sign, while the
// command may still run: every other process of the pool stops being
// granted slots at once.
type throttleWatch struct {
	re       *regexp.Regexp // nil: no --throttled-on
	detect   bool           // DetectLimit on the streams that are no terminal
	exitCode int            // -1: the exit status is not watched
	g        reporter
	stderr   io.Writer // where a failed report is said

	mu       sync.Mutex
	reported map[llmslots.LimitKind]bool
	cmd      *os.Process    // once started: told when its reader is gone
	copies   sync.WaitGroup // the streams being copied
}

// maxLine bounds the line kept for matching: a longer line is matched in
// pieces of this size (the bytes still all reach the terminal).
const maxLine = 64 << 10

// watching reports whether attach would give the command a stream of its
// own: stderr for --throttled-on; for --detect, stdout and stderr where
// they are no terminal (a person reads a terminal, and the command keeps
// it: an interactive session stays one).
func (w *throttleWatch) watching(stdout, stderr *os.File) (out, err bool) {
	return w.detect && !shared.IsTerminal(stdout), w.re != nil || w.detect && !shared.IsTerminal(stderr)
}

// attach gives cmd the streams to watch (see watching); both go to one
// file when stdout and stderr are one (2>&1), so their order is kept.
// exited must be closed once the command has exited: the copies then take
// what is left and end. The returned function closes the parent's copies
// of the command's side; call it after cmd.Start. On an error cmd's
// streams are stdout and stderr, unwatched.
func (w *throttleWatch) attach(cmd *exec.Cmd, stdout, stderr *os.File, exited <-chan struct{}) (started func(), err error) {
	out, errs := w.watching(stdout, stderr)
	if out && errs && sameFile(stdout, stderr) {
		f, err := w.tee(stderr, true, exited)
		if err != nil {
			return func() {}, err
		}
		cmd.Stdout, cmd.Stderr = f, f
		return func() { f.Close() }, nil
	}
	var opened []*os.File
	started = func() {
		for _, f := range opened {
			f.Close()
		}
	}
	for _, s := range []struct {
		watch    bool
		dst      *os.File
		to       *io.Writer
		isStderr bool
	}{{out, stdout, &cmd.Stdout, false}, {errs, stderr, &cmd.Stderr, true}} {
		if !s.watch {
			continue
		}
		f, err := w.tee(s.dst, s.isStderr, exited)
		if err != nil {
			started()
			cmd.Stdout, cmd.Stderr = stdout, stderr
			return func() {}, err
		}
		*s.to, opened = f, append(opened, f)
	}
	return started, nil
}

// sameFile reports whether a and b are one file (2>&1, or one pipe).
func sameFile(a, b *os.File) bool {
	ai, err1 := a.Stat()
	bi, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(ai, bi)
}

// started tells the watch the command's process.
func (w *throttleWatch) started(p *os.Process) {
	w.mu.Lock()
	w.cmd = p
	w.mu.Unlock()
}

// tee returns a file of its own for one of the command's streams,
// unlinked at once, which a goroutine copies to dst as it grows while it
// matches its lines. Not a pipe: once llmslots-etcd is killed, a pipe that no one
// reads kills the command (SIGPIPE) at its next write, while the command
// keeps its slot, and its output is lost; a file outlives llmslots-etcd. The
// command sees a regular file, not a terminal; its output reaches dst
// byte for byte, within tailMax. When dst's reader is gone (run -- codex
// | head -1), the command gets the SIGPIPE it would have got writing
// there itself, and what it still writes is dropped.
func (w *throttleWatch) tee(dst io.Writer, isStderr bool, exited <-chan struct{}) (*os.File, error) {
	// Where the copy has no room, the command's writes would fail: better
	// unwatched (--detect) or not at all (--throttled-on), and said.
	if free, ok := roomIn(os.TempDir()); ok && free < minRoom {
		return nil, fmt.Errorf("%s has %d KiB free, under the %d MiB a copy of its output needs", os.TempDir(), free>>10, minRoom>>20)
	}
	tmp, err := os.CreateTemp("", "llmslots-out-*")
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
	w.copies.Add(1)
	go func() {
		defer w.copies.Done()
		defer os.Remove(name)
		defer rf.Close()
		buf := make([]byte, 32<<10)
		var line []byte
		var copied, freed int64
		st := &stream{isStderr: isStderr}
		// The file's size when the command exited: what it wrote is
		// copied; a descendant writing on (yes &, a daemon) holds up
		// nothing, however fast it writes.
		endAt := make(chan int64, 1)
		go func() {
			<-exited
			size := int64(-1)
			if fi, err := rf.Stat(); err == nil {
				size = fi.Size()
			}
			endAt <- size
		}()
		wait, end, ended := tailMin, int64(0), false
		var gone time.Time // when dst's reader went away
		termed := false
		for {
			if !ended {
				select {
				case end = <-endAt:
					ended = true
				default:
				}
			}
			chunk := buf
			if ended && end >= 0 {
				if copied >= end {
					break
				}
				chunk = buf[:min(int64(len(buf)), end-copied)]
			}
			n, err := rf.Read(chunk)
			if n > 0 {
				if _, err := dst.Write(chunk[:n]); errors.Is(err, syscall.EPIPE) {
					w.signal(syscall.SIGPIPE)
					dst, gone = io.Discard, time.Now()
				} else if !gone.IsZero() && !termed && time.Since(gone) > time.Second {
					// Still writing a second after SIGPIPE: it ignores
					// the signal (node: claude, codex's wrapper), and a
					// write of its own would have failed with EPIPE.
					w.signal(syscall.SIGTERM)
					termed = true
				}
				line = w.scan(append(line, chunk[:n]...), st)
				wait = tailMin
				if copied += int64(n); copied-freed >= 1<<20 {
					freeCopied(rf, copied)
					freed = copied
				}
				continue
			}
			if err != nil && err != io.EOF || ended {
				break
			}
			select {
			case end = <-endAt:
				ended = true // the next turns copy up to that end
			case <-time.After(wait):
				wait = min(2*wait, tailMax)
			}
		}
		if len(line) > 0 {
			w.match(line, st)
		}
		if st.fenced && len(st.quoted) > 0 {
			// A block never closed was no quotation: the output was cut
			// (codex exec shows a command's first lines), and a CLI's
			// message may follow its start.
			if l, ok := llmslots.DetectLimit(st.quoted); ok {
				w.report(l)
			}
		}
	}()
	return wf, nil
}

// minRoom is the free space a copy wants: what was copied is freed a MiB
// at a time (Linux), and the reader may lag.
const minRoom = 16 << 20

// signal sends the command sig, once it has started: SIGPIPE where its
// output went and nobody reads any more.
func (w *throttleWatch) signal(sig os.Signal) {
	w.mu.Lock()
	p := w.cmd
	w.mu.Unlock()
	if p != nil {
		p.Signal(sig)
	}
}

// How often the copy looks for more of the command's output: soon after
// some came, less often as it stays quiet.
const tailMin, tailMax = 10 * time.Millisecond, 200 * time.Millisecond

// stream is what the matching knows of one of the command's streams.
type stream struct {
	isStderr bool   // --throttled-on watches stderr alone
	hunk     bool   // inside a diff's hunk: quoted material, no signal
	fenced   bool   // inside a ``` block: quoted material, no signal...
	quoted   []byte // ...once it closes; its last lines until then
}

// scan matches every complete line of data and returns what is left.
func (w *throttleWatch) scan(data []byte, st *stream) []byte {
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if len(data) >= maxLine {
				w.match(data, st)
				return data[:0]
			}
			return data
		}
		w.match(data[:i], st)
		data = data[i+1:]
	}
}

// match reports what line says. DetectLimit reads one line at a time
// here, so the stream keeps what it cannot see: whether the line is in a
// diff's hunk (quoted, though its context lines are indented like a
// message), or in a fenced block, whose lines count only if it never
// closes.
func (w *throttleWatch) match(line []byte, st *stream) {
	st.hunk = bytes.HasPrefix(line, []byte("@@ ")) || st.hunk && len(line) > 0 && bytes.IndexByte([]byte(" +-\\"), line[0]) >= 0
	switch {
	case bytes.HasPrefix(bytes.TrimSpace(line), []byte("```")):
		st.fenced, st.quoted = !st.fenced, st.quoted[:0]
	case !w.detect || st.hunk:
	case st.fenced:
		st.quoted = append(st.quoted, line...)
		st.quoted = append(st.quoted, '\n')
		if len(st.quoted) > maxLine {
			st.quoted = st.quoted[len(st.quoted)-maxLine:] // DetectLimit reads no more
		}
	default:
		if l, ok := llmslots.DetectLimit(line); ok {
			w.report(l)
			return
		}
	}
	if st.isStderr && w.re != nil && w.re.Match(line) {
		w.report(llmslots.Limit{Kind: llmslots.RateLimited, RetryAfter: parseRetryHint(string(line)), Line: string(line)})
	}
}

// report reports l, unless a limit of its kind was reported in this run.
func (w *throttleWatch) report(l llmslots.Limit) {
	w.mu.Lock()
	done := w.reported[l.Kind]
	if w.reported == nil {
		w.reported = map[llmslots.LimitKind]bool{}
	}
	w.reported[l.Kind] = true
	w.mu.Unlock()
	if done {
		return
	}
	if err := w.g.ReportLimit(l); err != nil {
		fmt.Fprintf(w.stderr, "%s: %v\n", name, err)
	}
}

// finish is called once the command has exited with status: it waits
// for the rest of its output to be copied (what a descendant writes after
// the command exited stays in the file, not copied), as long as the
// reader takes (a pipe written directly would hold the command as long),
// and reports a watched exit status.
func (w *throttleWatch) finish(status int) {
	w.copies.Wait()
	if w.exitCode >= 0 && status == w.exitCode {
		w.report(llmslots.Limit{Kind: llmslots.RateLimited})
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
