package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strings"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/etcdslots"
	shared "github.com/llmslots/llmslots/internal/cli"
)

const runSynopsis = name + " run [--etcd ENDPOINTS] --max N [--pool NAME] [--wait D] [--label TEXT] [--ttl D] [--grace D] [--local-max N] [--detect LIST] [--throttled-on REGEX] [--throttled-exit CODE] [--prefix P] [--cacert FILE] [--cert FILE --key FILE] [--user NAME] [--quiet] -- CMD [ARGS...]"

const runAbout = `
Takes a slot of the cluster pool (at most --max holders across every host
that uses the pool), runs CMD holding it, and exits with CMD's exit status
(128+N when CMD dies of signal N). CMD gets LLMSLOTS_ETCD_SLOT (the slot's
id) and LLMSLOTS_ETCD_TOKEN (its fencing token) in its environment. CMD
runs in a process group of its own; SIGINT, SIGTERM and SIGHUP sent to run
are forwarded to the whole group. When stdin is run's terminal and run is
in its foreground, CMD's group is made the terminal's foreground group (so
CMD reads the terminal and gets its Ctrl-C) until CMD exits; when Ctrl-Z
stops CMD, run takes the terminal back and stops too, so the shell sees
the job stopped, and fg continues both (Linux; elsewhere run does not
stop, and the shell waits on).

The slot is a lease that this process renews. When it may be lost (no
renewal acknowledged in time: the cluster is cut off or down, or this host
was paused; or the slot's key was deleted), CMD is stopped: SIGTERM, then
SIGKILL after --grace, all of it before the lease could expire and any
other host be granted the slot, so the grace comes out of the lease's time
and must fit --ttl. The signals go to CMD's process group, so the
processes CMD started are stopped too (unless they left the group, as a
daemon does with setsid), and run exits once none is left. run says why
on stderr and exits 76. If this process is SIGSTOPped it cannot stop CMD;
if it is killed, on Linux CMD itself gets SIGTERM (not its group, and no
SIGKILL); elsewhere it runs on without a slot, which frees within --ttl.
When CMD exits on its own, what it left running in the background is not
stopped.

With --local-max N it also holds a slot of the host's pool of the same name
(the one "llmslots run --pool NAME" uses, in LLMSLOTS_DIR): at most N on
this host and --max across all hosts. The host's slot is taken first, so
no cluster slot is held while waiting for this host; CMD inherits it.

With --detect LIST (default auto), run recognises a provider's rate or
usage limit in CMD's stdout and stderr as the CLIs in LIST (codex, claude)
print it, and reports it (etcdslots.Guard.ReportLimit): a rate limit as
--throttled-on does, a usage limit by pausing every host until the reset it
names, the limit kept. auto watches CMD when it is named codex or claude;
none, nothing. A stream that is a terminal is left alone; another is a
file of its own that run copies, as --throttled-on's stderr.

With --throttled-on REGEX, CMD's stderr is a file of its own that run
copies to its stderr as it grows (so CMD writes on if run is killed), and
the first line matching REGEX reports the slot's work throttled
(etcdslots.Guard.Throttled): no host is granted a slot of the pool for the
hint the line gives ("try again in 20s", "Retry-After: 5"), or a backoff
without one, by the cluster's clock, and the pool's limit is lowered until
work succeeds again. --throttled-exit CODE reports the same when CMD exits
with status CODE. See pause, resume and status.

No slot within --wait: exit 75. The cluster not answering within --wait
(at least a second): exit 69.`

// runCmd is "llmslots-etcd run".
func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run")
	var cf clusterFlags
	cf.register(fs, "at most `N` holders at once across all hosts")
	wait := fs.Duration("wait", 0, "give up after `D` (e.g. 30s, 5m) with exit 75; 0: one attempt; default: wait until a slot frees")
	label := fs.String("label", "", "record `TEXT` with the slot for status readers")
	fs.DurationVar(&cf.ttl, "ttl", etcdslots.DefaultTTL, "the slot's lease TTL `D`: a dead or cut-off holder's slot frees this long after its last renewal (1s..1h; the server's minimum is about 2s)")
	grace := fs.Duration("grace", 0, "when the slot may be lost, wait `D` after SIGTERM before sending CMD SIGKILL; all of it comes out of the lease's time, so it must fit --ttl (at most TTL/2 less the loss margin, TTL/10, and 200ms for SIGKILL); default: TTL/5, at most 10s (1s with the default --ttl)")
	localMax := fs.Int("local-max", 0, "also hold a slot of this host's pool of the same name, at most `N` on this host")
	quiet := fs.Bool("quiet", false, "say nothing while waiting")
	detect := fs.String("detect", "auto", "report the provider's rate and usage limits CMD prints, as codex and claude word them; `LIST`: auto (CMD named codex or claude, not behind a wrapper such as timeout or npx), codex, claude (either knows both CLIs' messages), none")
	throttledOn := fs.String("throttled-on", "", "report the work throttled when a line of CMD's stderr matches `REGEX` (Go syntax), e.g. '429|rate.?limit|usage limit'")
	throttledExit := fs.Int("throttled-exit", -1, "report the work throttled when CMD exits with status `CODE`")
	if code, done := parseFlags(fs, args, stdout, stderr, runSynopsis, runAbout); done {
		return code
	}
	if msg := cf.check(fs); msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	waitFor := time.Duration(-1) // until a slot frees
	if shared.IsSet(fs, "wait") {
		if *wait < 0 {
			return usageError(fs, stderr, "--wait must be >= 0, got %v", *wait)
		}
		waitFor = *wait
	}
	if !shared.IsSet(fs, "grace") {
		*grace = defaultGrace(cf.ttl)
	}
	if msg := checkGrace(*grace, cf.ttl); msg != "" && cf.ttl >= time.Second { // a bad --ttl is NewPool's to report
		return usageError(fs, stderr, "%s", msg)
	}
	// Lost closes early enough for SIGTERM, the grace and SIGKILL to be
	// over before the server could expire the lease and grant the slot to
	// another host (issue 22: with the grace after Lost, a command that
	// took 3 s to exit ran 2.7 s beside the next holder's).
	cf.margin = lossMargin(cf.ttl) + *grace + killWait
	if shared.IsSet(fs, "local-max") && (*localMax < 1 || *localMax > llmslots.MaxSlots) {
		return usageError(fs, stderr, "--local-max must be 1..%d, got %d", llmslots.MaxSlots, *localMax)
	}
	argv := fs.Args()
	detecting, msg := shared.Detecting(*detect, argv0(argv))
	if msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	watch := &throttleWatch{exitCode: *throttledExit, stderr: stderr, detect: detecting}
	if *throttledOn != "" {
		re, err := regexp.Compile(*throttledOn)
		if err != nil {
			return usageError(fs, stderr, "--throttled-on: %v", err)
		}
		watch.re = re
	}
	if shared.IsSet(fs, "throttled-exit") && (*throttledExit < 0 || *throttledExit > 255) {
		return usageError(fs, stderr, "--throttled-exit must be 0..255, got %d", *throttledExit)
	}
	if len(argv) == 0 {
		return usageError(fs, stderr, "no command given; put it after --")
	}

	// Find the command before waiting for a slot, so a typo fails at once.
	path, err := exec.LookPath(argv[0])
	if errors.Is(err, exec.ErrDot) {
		err = nil // the user's PATH put "." there; honour it like a shell
	}
	if err != nil {
		code := exitNotFound
		if errors.Is(err, os.ErrPermission) {
			code = exitNoExec
		}
		var ee *exec.Error
		if errors.As(err, &ee) {
			err = ee.Err
		}
		if errors.Is(err, exec.ErrNotFound) {
			err = errors.New("command not found")
		}
		return failure(stderr, code, fmt.Errorf("%s: %w", argv[0], err))
	}

	var local *llmslots.Pool
	if *localMax > 0 {
		var opts []llmslots.Option
		if *label != "" {
			opts = append(opts, llmslots.WithLabel(*label))
		}
		local, err = llmslots.NamedPool(cf.pool, opts...)
		var envErr *llmslots.EnvError
		switch {
		case errors.As(err, &envErr):
			return failure(stderr, exitError, err)
		case errors.Is(err, llmslots.ErrInvalid):
			return usageError(fs, stderr, "--local-max: %v", err)
		case err != nil:
			return failure(stderr, exitError, err)
		}
	}
	cli, pool, err := cf.connect(dialFor(waitFor), *label)
	switch {
	case errors.Is(err, llmslots.ErrInvalid):
		return usageError(fs, stderr, "%v", err)
	case err != nil:
		return failure(stderr, errorCode(err), err)
	}
	defer cli.Close()

	// Signals are caught from here on: while waiting they cancel the wait,
	// once CMD runs they are forwarded to it.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, shared.Forwarded...)
	defer signal.Stop(sigs)

	h, sig, err := acquire(pool, cf.max, local, *localMax, waitFor, sigs, *quiet, stderr)
	switch {
	case sig != nil:
		return 128 + shared.SignalNumber(sig)
	case err != nil && waitFor >= 0 && errorCode(err) == exitBusy:
		// "gave up waiting for a slot of POOL (max=N; held by ...): context
		// deadline exceeded" says it the library's way; say it the
		// command's.
		msg := strings.TrimSuffix(strings.TrimPrefix(err.Error(), "etcdslots: "), ": "+context.DeadlineExceeded.Error())
		return failure(stderr, exitBusy, fmt.Errorf("no slot within %v: %s", waitFor, msg))
	case err != nil:
		return failure(stderr, errorCode(err), err)
	}
	watch.g = h.cluster
	code, lost := runHolding(h, path, argv, sigs, *grace, stderr, watch)
	if err := h.release(lost); err != nil {
		fmt.Fprintf(stderr, "%s: releasing slot %d of %s: %v\n", name, h.cluster.SlotID(), pool.Dir(), err)
	}
	return code
}

// killWait is the time allowed from SIGKILL to the command's being gone.
const killWait = 200 * time.Millisecond

// pollEvery is how often run looks whether the group of a command it
// stops is gone: nothing signals that.
const pollEvery = 10 * time.Millisecond

// lossMargin is etcdslots' default loss margin for ttl (see
// etcdslots.WithLossMargin): the clocks' rates and the delay to act.
func lossMargin(ttl time.Duration) time.Duration { return max(ttl/10, 100*time.Millisecond) }

// maxGrace is the longest grace ttl leaves room for: Lost may close at
// most TTL/2 before the server could expire the lease (WithLossMargin's
// limit), and the loss margin and killWait come out of that too.
func maxGrace(ttl time.Duration) time.Duration { return ttl/2 - lossMargin(ttl) - killWait }

// defaultGrace is TTL/5 (1 s at the default TTL), at most 10 s: it fits
// every TTL, and leaves Lost closing no earlier than it must, so that a
// short hiccup of the cluster does not stop the command.
func defaultGrace(ttl time.Duration) time.Duration { return min(ttl/5, 10*time.Second) }

// checkGrace says why grace cannot be used with ttl; "" if it can.
func checkGrace(grace, ttl time.Duration) string {
	if grace < 0 {
		return fmt.Sprintf("--grace must be >= 0, got %v", grace)
	}
	if grace <= maxGrace(ttl) {
		return ""
	}
	// The least TTL with room for grace: ttl/2 - ttl/10 - killWait >= grace.
	need := ((grace+killWait)*5/2 + time.Second - 1).Truncate(time.Second)
	return fmt.Sprintf("--grace %v does not fit --ttl %v: SIGTERM, the grace and SIGKILL must all be over before the lease could expire and another host be granted the slot, "+
		"so with --ttl %v --grace can be at most %v (TTL/2, less the loss margin %v and %v for SIGKILL); lower --grace, or raise --ttl to %v or more",
		grace, ttl, ttl, maxGrace(ttl), lossMargin(ttl), killWait, need)
}

// errorCode is the exit status for an error taking a slot.
func errorCode(err error) int {
	switch {
	case errors.Is(err, etcdslots.ErrUnavailable):
		return exitUnavailable
	case errors.Is(err, llmslots.ErrBusy), errors.Is(err, context.DeadlineExceeded):
		return exitBusy
	}
	return exitError
}

// held is what run holds: a cluster slot, and a host slot with
// --local-max.
type held struct {
	cluster *etcdslots.Guard
	local   *llmslots.Guard // nil without --local-max
	dir     string          // the cluster pool, for messages
}

// release gives the slots back. A lost cluster slot is not: its key is
// gone, or goes with its lease within the loss margin, and revoking the
// lease of a holder cut off from the cluster would only delay the exit
// by a second.
func (h *held) release(lost bool) error {
	var err error
	if !lost {
		err = h.cluster.Release()
	}
	if h.local != nil {
		err = errors.Join(err, h.local.Release())
	}
	return err
}

// acquire takes the slots, waiting up to wait (negative: without limit),
// and gives up when one of sigs arrives, returning that signal. Unless
// quiet, it says on stderr that it waits once a second has passed.
func acquire(pool *etcdslots.Pool, max int, local *llmslots.Pool, localMax int, wait time.Duration, sigs <-chan os.Signal, quiet bool, stderr io.Writer) (*held, os.Signal, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if wait >= 0 {
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	caught := make(chan os.Signal, 1)
	stop := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		var notice <-chan time.Time
		if !quiet {
			notice = time.After(time.Second)
		}
		for {
			select {
			case s := <-sigs:
				caught <- s
				cancel()
				return
			case <-notice:
				what := fmt.Sprintf("a slot of %s (max %d)", pool.Dir(), max)
				if local != nil {
					what = fmt.Sprintf("a slot of %s (max %d) and then %s", local.Dir(), localMax, what)
				}
				fmt.Fprintf(stderr, "%s: waiting for %s\n", name, what)
			case <-stop:
				return
			}
		}
	}()
	h := &held{dir: pool.Dir()}
	var err error
	if local != nil {
		var b *etcdslots.Both
		if b, err = etcdslots.AcquireBoth(ctx, local, localMax, pool, max); err == nil {
			h.cluster, h.local = b.Cluster, b.Local
		}
	} else {
		h.cluster, err = pool.AcquireContext(ctx, max)
	}
	close(stop)
	<-watcherDone
	select {
	case s := <-caught:
		// The user wants out, and CMD has not started.
		if err == nil {
			h.release(false)
		}
		return nil, s, nil
	default:
	}
	if err != nil {
		return nil, nil, err
	}
	return h, nil, nil
}

// argv0 is the command's name, "" if there is none.
func argv0(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	return argv[0]
}
