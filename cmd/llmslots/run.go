package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/internal/cli"
)

const runSynopsis = "llmslots run [--pool NAME | --dir DIR | --etcd ENDPOINTS] [--max N] [--wait D] [--label TEXT] [--exec] [--detect LIST] [--throttled-on REGEX] [--throttled-exit CODE] -- CMD [ARGS...]"

const runAbout = `
Takes a slot of the pool, runs CMD holding it, and exits with CMD's exit
status (128+N when CMD dies of signal N). CMD inherits the locked slot: the
slot is free only when the last process holding it is gone. It stays held
while CMD or any descendant that keeps the descriptor lives (a process CMD
put in the background included), even after CMD and llmslots have exited
or been killed. SIGINT, SIGTERM and SIGHUP are forwarded to CMD (SIGINT
only when stdin is not a terminal: a terminal sends Ctrl-C to CMD itself).

With --exec, llmslots replaces itself with CMD once it holds the slot: no
parent process stays behind, and the slot file names CMD's pid.

A program started under a slot that runs llmslots (or uses package
llmslots) on the same pool gets its parent's slot at once instead of
waiting for a second one.

No slot within --wait: exit 75, naming the holders. Waiting, llmslots shows
a live line on stderr when it is a terminal, one line otherwise; while the
pool is paused after a throttle report, it says until when.

With --detect LIST (default auto), llmslots recognises a provider's rate or
usage limit in CMD's stdout and stderr as the CLIs in LIST (codex, claude)
print it ("exceeded retry limit, last status: 429", "You've hit your usage
limit ... try again in 3 hours", "Claude AI usage limit reached|1755615600")
and reports it: a rate limit as --throttled-on does, a usage limit by
pausing every process of the pool until the reset it names, the limit
kept. auto watches CMD when it is named codex or claude; none, nothing. A
stream that is a terminal is left alone (a person reads it, and an
interactive session keeps its terminal); another reaches its place through
llmslots, as --throttled-on's stderr does (stdout and stderr in one file
stay in order; when the reader goes away, as head does, CMD gets SIGPIPE,
then SIGTERM if it writes on a second later; what a descendant writes
after CMD exited is not copied). --exec turns the default off; --exec with
--detect given (shims give it) execs CMD when nothing is to be watched,
and stays its parent otherwise.

With --throttled-on REGEX, CMD's stderr goes through llmslots (to the same
place, byte for byte, within 0.2 s; CMD writes to a file of its own, not a
terminal, and writes on into it if llmslots is killed, where it is kept
until CMD exits) and the first line matching REGEX reports the slot's work
throttled: every process of the pool stops being granted slots for the
hint the line gives
("try again in 20s", "Retry-After: 5"), or a backoff without one, and the
pool's limit is lowered until work succeeds again. --throttled-exit CODE
reports the same when CMD exits with status CODE. Neither goes with --exec.
See llmslots pause, resume and status.

With --etcd ENDPOINTS (or LLMSLOTS_ETCD set) the pool is the cluster pool
--pool NAME in etcd, shared by every host: llmslots runs llmslots-etcd with
the same arguments (see "llmslots-etcd run --help"; it has a few flags of
its own). Install it with (Go 1.26 or newer)
go install github.com/llmslots/llmslots/etcdslots/cmd/llmslots-etcd@latest
or, in a clone of the repository, go install ./etcdslots/cmd/llmslots-etcd`

// runCmd is "llmslots run".
func runCmd(args []string, stdout, stderr io.Writer) int {
	if wantsCluster(args) {
		return runCluster("run", args, stderr)
	}
	fs := newFlags("run", runSynopsis, runAbout)
	var pf poolFlags
	pf.register(fs, "at most `N` holders at once")
	fs.String("etcd", "", etcdUsage)
	wait := fs.Duration("wait", 0, "give up after `D` (e.g. 30s, 5m) with exit 75; 0: one attempt; default: wait until a slot frees")
	label := fs.String("label", "", "record `TEXT` in the slot for status readers")
	execFlag := fs.Bool("exec", false, "replace llmslots with CMD once the slot is held (Unix only)")
	quiet := fs.Bool("quiet", false, "say nothing while waiting unless stderr is a terminal (where the live line is erased once the slot is taken); shims use it, so the program's stderr stays its own")
	shim := fs.String("shim", "", "run the real `NAME` found along PATH, skipping llmslots shims, with ARGS (what shim scripts use)")
	detect := fs.String("detect", "auto", "report the provider's rate and usage limits CMD prints, as codex and claude word them; `LIST`: auto (CMD named codex or claude, not behind a wrapper such as timeout or npx), codex, claude (either knows both CLIs' messages), none")
	throttledOn := fs.String("throttled-on", "", "report the work throttled when a line of CMD's stderr matches `REGEX` (Go syntax), e.g. '429|rate.?limit|usage limit'")
	throttledExit := fs.Int("throttled-exit", -1, "report the work throttled when CMD exits with status `CODE`")
	noDefault(fs, "throttled-exit")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if msg := pf.check(fs); msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	waitFor := time.Duration(-1) // until a slot frees
	if cli.IsSet(fs, "wait") {
		if *wait < 0 {
			return usageError(fs, stderr, "--wait must be >= 0, got %v", *wait)
		}
		waitFor = *wait
	}
	if *execFlag && !canExec {
		return failure(stderr, exitError, fmt.Errorf("llmslots: --exec is not supported on %s; run without it", runtime.GOOS))
	}
	if msg := checkText("--shim", *shim); msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	argv := fs.Args()
	detecting, msg := cli.Detecting(*detect, cmp.Or(*shim, argv0(argv)))
	if msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	watch := &throttleWatch{exitCode: *throttledExit, detect: detecting}
	if *throttledOn != "" {
		re, err := regexp.Compile(*throttledOn)
		if err != nil {
			return usageError(fs, stderr, "--throttled-on: %v", err)
		}
		watch.re = re
	}
	if cli.IsSet(fs, "throttled-exit") && (*throttledExit < 0 || *throttledExit > 255) {
		return usageError(fs, stderr, "--throttled-exit must be 0..255, got %d", *throttledExit)
	}
	if *execFlag && (watch.re != nil || watch.exitCode >= 0) {
		return usageError(fs, stderr, "--throttled-on and --throttled-exit need llmslots to stay CMD's parent; drop --exec")
	}
	if *execFlag && detecting {
		// --exec turns the default off. With --detect given too (as shims
		// give it), llmslots stays CMD's parent only if there is output
		// to watch: on a terminal CMD is exec'd, and keeps it alone.
		out, errs := watch.watching(os.Stdout, os.Stderr)
		if cli.IsSet(fs, "detect") && (out || errs) {
			*execFlag = false
		} else {
			watch.detect = false
		}
	}
	if *shim == "" && len(argv) == 0 {
		return usageError(fs, stderr, "no command given; put it after --")
	}
	if *shim == "" && !dashDashGiven(args, argv) {
		warnStrayFlags(fs, argv, stderr)
	}

	// Find the command before waiting for a slot, so a typo fails at once.
	var path string
	var err error
	if *shim != "" {
		path, err = findReal(*shim)
		argv = append([]string{*shim}, argv...)
	} else {
		path, err = exec.LookPath(argv[0])
		if errors.Is(err, exec.ErrDot) {
			err = nil // the user's PATH put "." there; honour it like a shell
		}
	}
	if err != nil {
		code := exitNotFound
		if errors.Is(err, os.ErrPermission) {
			code = exitNoExec
		}
		var ee *exec.Error
		if errors.As(err, &ee) {
			err = ee.Err // the name is said once, below
		}
		if errors.Is(err, exec.ErrNotFound) {
			err = errors.New("command not found")
		}
		return failure(stderr, code, fmt.Errorf("llmslots: %s: %w", argv[0], err))
	}

	// The package records os.Args, read at the first acquire, as the
	// holder's and the waiter's command: make it CMD, the program the slot
	// is for, so that status shows it rather than this wrapper and its
	// flags (as --exec's record does once CMD replaces llmslots).
	os.Args = argv

	waitOut := stderr
	if f, ok := stderr.(*os.File); *quiet && (!ok || !cli.IsTerminal(f)) {
		waitOut = io.Discard
	}
	max := pf.maxOrDefault(stderr)
	show := newWaitDisplay(waitOut, max, waitFor)
	opts := []llmslots.Option{llmslots.WithProgress(show.update)}
	if *label != "" {
		opts = append(opts, llmslots.WithLabel(*label))
	}
	pool, code, done := openPool(&pf, fs, stderr, opts...)
	if done {
		return code
	}

	// Signals are caught from here on: while waiting they cancel the wait,
	// once CMD runs they are forwarded to it.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, cli.Forwarded...)
	defer signal.Stop(sigs)

	g, sig, err := acquireWhileWatching(pool, max, waitFor, sigs, show)
	switch {
	case sig != nil:
		return 128 + cli.SignalNumber(sig)
	case errors.Is(err, llmslots.ErrBusy):
		// Said even with --quiet: the command did not run, and why matters.
		return failure(stderr, exitBusy, err)
	case err != nil:
		return failure(stderr, exitError, err)
	}

	if *execFlag {
		signal.Stop(sigs)
		err := execHolding(g, path, argv)
		// Only a failed exec returns.
		g.Release()
		return failure(stderr, cli.ExecFailureCode(err), fmt.Errorf("llmslots: cannot exec %s: %w", path, err))
	}
	watch.g = g
	code = runHolding(g, path, argv, sigs, stderr, watch)
	if err := g.Release(); err != nil {
		fmt.Fprintf(stderr, "llmslots: releasing slot %d: %v\n", g.SlotID(), err)
	}
	return code
}

// acquireWhileWatching takes a slot, waiting up to wait (negative: without
// limit), and gives up when one of sigs arrives, returning that signal.
func acquireWhileWatching(pool *llmslots.Pool, max int, wait time.Duration, sigs <-chan os.Signal, show *waitDisplay) (*llmslots.Guard, os.Signal, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	caught := make(chan os.Signal, 1)
	stop := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case s := <-sigs:
			caught <- s
			cancel()
		case <-stop:
		}
	}()
	g, err := acquire(ctx, pool, max, wait, show)
	close(stop)
	<-watcherDone
	select {
	case s := <-caught:
		// A signal that came while we waited, or just as we got the slot:
		// either way the user wants out, and CMD has not started.
		g.Release()
		return nil, s, nil
	default:
	}
	return g, nil, err
}

// runHolding runs CMD as a child that inherits the slot, forwards signals
// to it, and returns the exit status to report.
func runHolding(g *llmslots.Guard, path string, argv []string, sigs <-chan os.Signal, stderr io.Writer, watch *throttleWatch) int {
	cmd := &exec.Cmd{Path: path, Args: argv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if err := g.Inherit(cmd); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return failure(stderr, exitError, err)
	}
	exited := make(chan struct{}) // closed once CMD has exited (or did not start)
	// A copy (throttleWatch.tee) that writes where the reader is gone
	// gets EPIPE, and tells the command, instead of this process dying of
	// SIGPIPE while the command writes on to a file nobody reads.
	brokenPipe := make(chan os.Signal, 1)
	signal.Notify(brokenPipe, syscall.SIGPIPE)
	defer signal.Stop(brokenPipe)
	started, err := watch.attach(cmd, os.Stdout, os.Stderr, exited)
	if err != nil && watch.re != nil {
		return failure(stderr, exitError, fmt.Errorf("llmslots: cannot watch %s's output: %w", path, err))
	} else if err != nil {
		// --detect alone (perhaps by default): no reason not to run.
		fmt.Fprintf(stderr, "llmslots: warning: cannot watch %s's output for the provider's limits, so it runs unwatched: %v\n", printable(argv[0]), err)
	}
	// Where the lock cannot be handed on (Windows), llmslots holds the slot
	// for CMD while both live; see docs/command.md, Platform notes.
	err = cmd.Start()
	started()
	if err != nil {
		close(exited)
		return failure(stderr, cli.ExecFailureCode(err), fmt.Errorf("llmslots: cannot run %s: %w", path, err))
	}
	watch.started(cmd.Process)
	go func() {
		for {
			select {
			case s := <-sigs:
				if cli.ForwardSignal(s) {
					cmd.Process.Signal(s)
				}
			case <-exited:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(exited)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return failure(stderr, exitError, fmt.Errorf("llmslots: waiting for %s: %w", path, err))
	}
	status := cli.ExitStatus(cmd.ProcessState)
	watch.finish(status)
	return status
}

// dashDashGiven reports whether "--" ended run's flags in args, rest being
// what parsing left.
func dashDashGiven(args, rest []string) bool {
	n := len(args) - len(rest)
	return n > 0 && args[n-1] == "--"
}

// warnStrayFlags says, in one line, which arguments of the command look
// like run's own flags: "llmslots run echo --max 3" passes --max 3 to echo
// and runs with the default max, and nothing used to say so. With "--"
// the user said where the command begins, and nothing is said.
func warnStrayFlags(fs *flag.FlagSet, argv []string, stderr io.Writer) {
	var stray []string
	for _, a := range argv[1:] {
		name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if strings.HasPrefix(a, "-") && name != "" && fs.Lookup(name) != nil {
			stray = append(stray, "--"+name)
		}
	}
	if len(stray) == 0 {
		return
	}
	cmd := printable(argv[0])
	fmt.Fprintf(stderr, "llmslots: warning: %s after the command %s go to %s, not to llmslots run; put them before %s, or write -- before %s to pass them on without this warning\n",
		strings.Join(stray, ", "), cmd, cmd, cmd, cmd)
}

// argv0 is the command's name, "" if there is none.
func argv0(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	return argv[0]
}
