package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/internal/cli"
)

const shimSynopsis = `llmslots shim NAME [--pool P] [--max N] [--wait D] [--bin-dir DIR] [--detect LIST] [--throttled-on REGEX] [--throttled-exit CODE]
       llmslots shim --remove NAME [--bin-dir DIR]`

const shimAbout = `
Writes an executable script DIR/NAME that finds the real NAME further along
PATH (skipping itself and every other llmslots shim) and execs it under a
slot, passing arguments, stdin, stdout and exit status through. Put DIR
before the real program's directory on PATH, and every tool that runs NAME
is limited without changing the tool.

The pool is P, by default the pool named NAME, so that a "codex" limit and a
"claude" limit do not compete. The max is N, by default whatever
LLMSLOTS_MAX or the machine says when the shim runs. A shim for codex or
claude (or one given --detect) keeps llmslots as the program's parent
where its output is no terminal, to report the provider's limits it prints
(see llmslots run --help). shim refuses to overwrite a file it did not
write, and warns when DIR is not on PATH or comes after the real NAME. Not
available on Windows.`

// shimMarker identifies a script written by shim; shim overwrites and
// removes only files that carry it, and run --shim skips them.
const shimMarker = "# llmslots-shim v1"

// shimCmd is "llmslots shim".
func shimCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("shim", shimSynopsis, shimAbout)
	pool := fs.String("pool", "", "the pool `P` (default: the pool named NAME)")
	max := fs.Int("max", 0, "at most `N` at once (default: $LLMSLOTS_MAX, else from CPUs and memory, when the shim runs)")
	wait := fs.Duration("wait", 0, "give up after `D` with exit 75 (default: wait until a slot frees)")
	binDir := fs.String("bin-dir", "", "write the shim in `DIR` (default: ~/.local/bin)")
	remove := fs.Bool("remove", false, "remove the shim NAME instead")
	detect := fs.String("detect", "auto", "passed to run: report the provider's rate and usage limits the program prints; `LIST`: auto (NAME is codex or claude), codex, claude, none (exec the program, unwatched)")
	throttledOn := fs.String("throttled-on", "", "passed to run: report the work throttled when a line of the program's stderr matches `REGEX`")
	throttledExit := fs.Int("throttled-exit", -1, "passed to run: report the work throttled when the program exits with status `CODE`")
	noDefault(fs, "throttled-exit")
	// Flags may come before or after NAME: parse, take one positional,
	// parse the rest.
	var names []string
	for {
		if code, done := parseFlags(fs, args, stdout, stderr); done {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(names) != 1 {
		return usageError(fs, stderr, "want one program NAME, got %d", len(names))
	}
	name := names[0]
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return usageError(fs, stderr, "NAME must be a program name, not a path: %q", name)
	}
	// NAME is written into the script and names a file: a newline in it
	// would start a command of its own in the script.
	if msg := checkText("NAME", name); msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	if msg := checkText("--bin-dir", *binDir); msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	if cli.IsSet(fs, "max") && (*max < 1 || *max > llmslots.MaxSlots) {
		return usageError(fs, stderr, "--max must be 1..%d, got %d", llmslots.MaxSlots, *max)
	}
	if *wait < 0 {
		return usageError(fs, stderr, "--wait must be >= 0, got %v", *wait)
	}
	if *throttledOn != "" {
		if _, err := regexp.Compile(*throttledOn); err != nil {
			return usageError(fs, stderr, "--throttled-on: %v", err)
		}
		if msg := checkText("--throttled-on", *throttledOn); msg != "" {
			return usageError(fs, stderr, "%s", msg)
		}
	}
	if cli.IsSet(fs, "throttled-exit") && (*throttledExit < 0 || *throttledExit > 255) {
		return usageError(fs, stderr, "--throttled-exit must be 0..255, got %d", *throttledExit)
	}
	if *remove && (cli.IsSet(fs, "pool") || cli.IsSet(fs, "max") || cli.IsSet(fs, "wait") || cli.IsSet(fs, "detect") || cli.IsSet(fs, "throttled-on") || cli.IsSet(fs, "throttled-exit")) {
		return usageError(fs, stderr, "--remove takes only NAME and --bin-dir")
	}
	if runtime.GOOS == "windows" {
		return failure(stderr, exitError, errors.New("llmslots: shim writes a POSIX shell script and is not supported on Windows"))
	}
	dir := *binDir
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return failure(stderr, exitError, fmt.Errorf("llmslots: no home directory for the default --bin-dir: %w", err))
		}
		dir = filepath.Join(home, ".local", "bin")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return failure(stderr, exitError, err)
	}
	path := filepath.Join(dir, name)

	if *remove {
		if err := removeShim(path); err != nil {
			return failure(stderr, exitError, err)
		}
		fmt.Fprintf(stdout, "removed shim %s\n", path)
		return exitOK
	}

	p := *pool
	if p == "" {
		p = name
	}
	if _, err := llmslots.NamedPool(p); errors.Is(err, llmslots.ErrInvalid) && !cli.IsSet(fs, "pool") {
		// NAME (say, "Codex") is no pool name. It used to mean the default
		// pool, silently, shared with every run that names none.
		return usageError(fs, stderr, "NAME %q is no pool name (%s); give the pool with --pool P", name, strings.TrimPrefix(err.Error(), "llmslots: "))
	} else if errors.Is(err, llmslots.ErrInvalid) {
		return usageError(fs, stderr, "%s", strings.TrimPrefix(err.Error(), "llmslots: "))
	}
	self, err := os.Executable()
	if err != nil {
		return failure(stderr, exitError, fmt.Errorf("llmslots: cannot find the llmslots binary to call from the shim: %w", err))
	}
	runArgs := []string{"run", "--exec", "--quiet", "--shim", name}
	detecting, msg := cli.Detecting(*detect, name)
	if msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	if detecting {
		// run execs the program on a terminal, and stays its parent, to
		// watch it, when there is output to watch.
		runArgs = append(runArgs, "--detect", *detect)
	}
	if *throttledOn != "" || cli.IsSet(fs, "throttled-exit") {
		// llmslots stays the program's parent, to watch it: no --exec.
		runArgs = []string{"run", "--quiet", "--shim", name, "--detect", *detect}
		if *throttledOn != "" {
			runArgs = append(runArgs, "--throttled-on", *throttledOn)
		}
		if cli.IsSet(fs, "throttled-exit") {
			runArgs = append(runArgs, "--throttled-exit", strconv.Itoa(*throttledExit))
		}
	}
	runArgs = append(runArgs, "--pool", p)
	if cli.IsSet(fs, "max") {
		runArgs = append(runArgs, "--max", strconv.Itoa(*max))
	}
	if cli.IsSet(fs, "wait") {
		runArgs = append(runArgs, "--wait", wait.String())
	}
	if err := writeShim(path, shimScript(name, self, runArgs)); err != nil {
		return failure(stderr, exitError, err)
	}
	fmt.Fprintf(stdout, "wrote shim %s: runs the real %s under a slot of pool %s\n", path, name, p)
	for _, w := range pathWarnings(dir, name, os.Getenv("PATH")) {
		fmt.Fprintln(stderr, "llmslots: warning: "+w)
	}
	return exitOK
}

// shimScript is the shim's text: it execs llmslots, which finds the real
// program (see findReal) and execs it holding a slot, so no process of the
// shim's stays behind and the slot lives exactly as long as the program.
// name must hold no control character (checkText): it is written in the
// comments as it is.
func shimScript(name, self string, runArgs []string) []byte {
	var b bytes.Buffer
	b.WriteString("#!/bin/sh\n")
	b.WriteString(shimMarker + "\n")
	fmt.Fprintf(&b, "# Runs the real %s, found further along PATH, under an llmslots slot.\n", name)
	fmt.Fprintf(&b, "# Written by llmslots shim on %s; remove with: llmslots shim --remove %s\n", time.Now().UTC().Format(time.DateOnly), shellQuote(name))
	b.WriteString("exec " + shellQuote(self))
	for _, a := range runArgs {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString(" -- \"$@\"\n")
	return b.Bytes()
}

// shellQuote quotes s for sh: in single quotes, each quote inside written
// as quote, backslash, quote, quote.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// isShim reports whether path is a script shim wrote.
func isShim(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 256)
	n, _ := io.ReadFull(f, head)
	return bytes.Contains(head[:n], []byte("\n"+shimMarker+"\n"))
}

// writeShim writes the shim at path, atomically (a temporary file renamed
// into place), unless something that is not a shim is there.
func writeShim(path string, script []byte) error {
	if fi, err := os.Lstat(path); err == nil {
		if !fi.Mode().IsRegular() || !isShim(path) {
			return fmt.Errorf("llmslots: %s exists and was not written by llmslots shim; refusing to overwrite it", path)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("llmslots: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("llmslots: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".llmslots-shim-*")
	if err != nil {
		return fmt.Errorf("llmslots: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(script); err != nil {
		tmp.Close()
		return fmt.Errorf("llmslots: %w", err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return fmt.Errorf("llmslots: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("llmslots: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("llmslots: %w", err)
	}
	return nil
}

// removeShim removes the shim at path, and nothing else.
func removeShim(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("llmslots: there is no shim %s", path)
	}
	if err != nil {
		return fmt.Errorf("llmslots: %w", err)
	}
	if !fi.Mode().IsRegular() || !isShim(path) {
		return fmt.Errorf("llmslots: %s was not written by llmslots shim; refusing to remove it", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("llmslots: %w", err)
	}
	return nil
}

// executable reports whether path is a regular file someone may execute.
func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// findReal returns the first NAME along PATH that is not an llmslots shim:
// the program a shim stands in front of. Skipping every shim, not only the
// one running, keeps two shim directories on PATH from calling each other
// forever.
func findReal(name string) (string, error) {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // "." and relative entries: never for a shim's target
		}
		cand := filepath.Join(dir, name)
		if executable(cand) && !isShim(cand) {
			return cand, nil
		}
	}
	return "", fmt.Errorf("no %s on PATH other than llmslots shims", name)
}

// pathWarnings says what would keep the shim in dir from being used.
func pathWarnings(dir, name, pathEnv string) []string {
	binAt, realAt, realPath := -1, -1, ""
	for i, d := range filepath.SplitList(pathEnv) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		if binAt < 0 && sameDir(d, dir) {
			binAt = i
			continue
		}
		cand := filepath.Join(d, name)
		if realAt < 0 && executable(cand) && !isShim(cand) {
			realAt, realPath = i, cand
		}
	}
	var ws []string
	switch {
	case binAt < 0:
		ws = append(ws, fmt.Sprintf("%s is not on PATH, so programs that run %s will not find the shim; add it in front: export PATH=%s:$PATH", dir, name, shellQuote(dir)))
	case realAt >= 0 && realAt < binAt:
		ws = append(ws, fmt.Sprintf("the real %s (%s) comes before %s on PATH, so the shim is never used; put %s first", name, realPath, dir, dir))
	}
	if realAt < 0 {
		ws = append(ws, fmt.Sprintf("no real %s found on PATH; the shim fails (exit 127) until one is installed", name))
	}
	return ws
}

// sameDir reports whether a and b are the same directory.
func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
