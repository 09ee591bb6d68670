package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/internal/cli"
)

// poolFlags are the flags that choose a pool and its size, shared by the
// subcommands.
type poolFlags struct {
	pool string
	dir  string
	max  int
}

// register defines --pool and --dir on fs, and --max when maxUsage, what
// --max means to the subcommand, is not "".
func (pf *poolFlags) register(fs *flag.FlagSet, maxUsage string) {
	fs.StringVar(&pf.pool, "pool", "", "use the named pool `NAME` ([a-z0-9._-], a subdirectory of the default pool's directory)")
	fs.StringVar(&pf.dir, "dir", "", "use the pool in directory `DIR` (absolute); default: $LLMSLOTS_DIR, else $XDG_RUNTIME_DIR/llmslots, else the user cache directory")
	if maxUsage != "" {
		fs.IntVar(&pf.max, "max", 0, fmt.Sprintf("%s (1..%d); default: $LLMSLOTS_MAX, else from CPUs and memory (see llmslots max)", maxUsage, llmslots.MaxSlots))
	}
}

// check validates the flags; a non-empty answer is a usage error.
func (pf *poolFlags) check(fs *flag.FlagSet) string {
	if pf.pool != "" && pf.dir != "" {
		return "--pool and --dir choose a pool each; give one of them"
	}
	if cli.IsSet(fs, "pool") && pf.pool == "" {
		return "--pool needs a name"
	}
	if cli.IsSet(fs, "dir") && (pf.dir == "" || !filepath.IsAbs(pf.dir)) {
		return fmt.Sprintf("--dir must be an absolute path, got %q", pf.dir)
	}
	if msg := checkText("--dir", pf.dir); msg != "" {
		return msg
	}
	if cli.IsSet(fs, "max") && (pf.max < 1 || pf.max > llmslots.MaxSlots) {
		return fmt.Sprintf("--max must be 1..%d, got %d", llmslots.MaxSlots, pf.max)
	}
	return ""
}

// maxOrDefault returns --max, or the default when it was not given,
// worked out once so that every use in a run agrees. An LLMSLOTS_MAX the
// default had to ignore is said on stderr: the library only logs it, and
// its logger is silent unless a program sets one.
func (pf *poolFlags) maxOrDefault(stderr io.Writer) int {
	if pf.max > 0 {
		return pf.max
	}
	c := llmslots.ExplainMaxConcurrency()
	if c.EnvError != "" {
		fmt.Fprintf(stderr, "llmslots: warning: %s; using max %d, from CPUs and memory (see llmslots max)\n", c.EnvError, c.Max)
	}
	pf.max = c.Max
	return pf.max
}

// open returns the chosen pool, with opts. An error matching
// llmslots.ErrInvalid is a bad flag (a pool name or label), unless it is an
// llmslots.EnvError.
func (pf *poolFlags) open(opts ...llmslots.Option) (*llmslots.Pool, error) {
	if pf.dir != "" {
		return llmslots.NewPool(pf.dir, opts...)
	}
	if pf.pool != "" {
		return llmslots.NamedPool(pf.pool, opts...)
	}
	return llmslots.DefaultPool(opts...)
}

// openPool opens the pool for a subcommand and reports a failure: a usage
// error for a bad name or label, else exitError. done is true on failure.
func openPool(pf *poolFlags, fs *flag.FlagSet, stderr io.Writer, opts ...llmslots.Option) (p *llmslots.Pool, code int, done bool) {
	if why := unsuitable(pf.dir); why != "" {
		return nil, usageError(fs, stderr, "--dir %s is %s; give a directory of llmslots' own", printable(pf.dir), why), true
	}
	if env := os.Getenv(llmslots.EnvDir); pf.dir == "" {
		if why := unsuitable(env); why != "" {
			return nil, failure(stderr, exitError, fmt.Errorf("llmslots: %s=%s is %s; set it to a directory of llmslots' own, or unset it", llmslots.EnvDir, env, why)), true
		}
	}
	p, err := pf.open(opts...)
	var envErr *llmslots.EnvError
	switch {
	case errors.As(err, &envErr):
		// The environment is the user's to fix, not a usage error.
		return nil, failure(stderr, exitError, err), true
	case errors.Is(err, llmslots.ErrInvalid):
		return nil, usageError(fs, stderr, "%s", strings.TrimPrefix(err.Error(), "llmslots: ")), true
	case err != nil:
		return nil, failure(stderr, exitError, err), true
	}
	return p, 0, false
}

// poolStatus is the body of a subcommand that takes pool flags and no
// arguments: it parses args, opens the pool and reads its status; done
// reports that the subcommand ends here with code.
func poolStatus(fs *flag.FlagSet, pf *poolFlags, args []string, stdout, stderr io.Writer) (pool *llmslots.Pool, st llmslots.Status, code int, done bool) {
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return nil, st, code, true
	}
	if fs.NArg() > 0 {
		return nil, st, usageError(fs, stderr, "unexpected argument %q", fs.Arg(0)), true
	}
	if msg := pf.check(fs); msg != "" {
		return nil, st, usageError(fs, stderr, "%s", msg), true
	}
	pool, code, done = openPool(pf, fs, stderr)
	if done {
		return nil, st, code, true
	}
	st, err := pool.ReadStatus(pf.maxOrDefault(stderr))
	if err != nil {
		return nil, st, failure(stderr, exitError, err), true
	}
	return pool, st, 0, false
}

// unsuitable says why dir, a pool's root directory, must not hold slots,
// or "" when it may: the filesystem root and the home directory already
// hold what the user keeps, and every named pool would be one of their
// subdirectories (LLMSLOTS_DIR=/ made /.queue, and --pool bin of
// LLMSLOTS_DIR=$HOME would have been ~/bin).
func unsuitable(dir string) string {
	if dir == "" || !filepath.IsAbs(dir) {
		return "" // none given, or refused as relative elsewhere
	}
	if clean := filepath.Clean(dir); filepath.Dir(clean) == clean {
		return "the filesystem root"
	}
	if home, err := os.UserHomeDir(); err == nil && filepath.IsAbs(home) && sameDir(dir, home) {
		return "the home directory"
	}
	return ""
}
