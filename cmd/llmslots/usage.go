package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/llmslots/llmslots/internal/cli"
)

// newFlags makes a subcommand's flag set. Parse errors are reported by
// parseFlags, not by the flag package, so help goes to stdout and errors
// to stderr.
func newFlags(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("llmslots "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // printUsage does it
	synopses[fs] = synopsis
	abouts[fs] = strings.TrimSpace(about)
	return fs
}

// noDefault keeps help from showing a default for the named flags: their
// initial value (-1 for --throttled-exit) only marks "not given".
func noDefault(fs *flag.FlagSet, names ...string) {
	for _, n := range names {
		fs.Lookup(n).DefValue = ""
	}
}

// synopses and abouts hold each subcommand's usage line and description,
// which --help shows.
var synopses, abouts = map[*flag.FlagSet]string{}, map[*flag.FlagSet]string{}

// printUsage writes fs's usage, with the description, to w.
func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", synopses[fs], abouts[fs])
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprint(w, "\nFlags:\n")
		cli.PrintFlags(fs, w)
	}
}

// parseFlags parses args; done is true when the caller should return code
// (help was shown, or the flags were wrong).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		printUsage(fs, stdout)
		return exitOK, true
	}
	return usageError(fs, stderr, "%s", flagProblem(fs, err)), true
}

// usageError reports a usage error on one line, pointing to --help, and
// returns exitUsage. The whole usage is not repeated: printed after the
// message it pushed the message off the screen (issue 22, item 6).
func usageError(fs *flag.FlagSet, stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "%s: %s; see %s --help\n", fs.Name(), fmt.Sprintf(format, args...), fs.Name())
	return exitUsage
}

// The flag package's errors, which name a flag -flag and hide why a value
// was refused ("parse error").
var (
	flagUndefined = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	flagNoValue   = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
	flagBadValue  = regexp.MustCompile(`^invalid (?:boolean )?value ("(?:[^"\\]|\\.)*") for (?:flag )?-+([^:]*): `)
)

// flagProblem says what is wrong in err, an error of fs.Parse, naming
// the flag as help writes it (--flag) with the value as given, and why
// the value is refused.
func flagProblem(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := flagUndefined.FindStringSubmatch(msg); m != nil {
		return "unknown flag --" + m[1]
	}
	if m := flagNoValue.FindStringSubmatch(msg); m != nil {
		what := "value"
		if f := fs.Lookup(m[1]); f != nil {
			if name, _ := flag.UnquoteUsage(f); name != "" {
				what += " " + name
			}
		}
		return fmt.Sprintf("--%s needs a %s", m[1], what)
	}
	m := flagBadValue.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	value, name := m[1], m[2]
	if v, err := strconv.Unquote(value); err == nil {
		value = v
	}
	value = printable(value)
	var kind any
	if f := fs.Lookup(name); f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			kind = g.Get()
		}
	}
	switch kind.(type) {
	case bool:
		return fmt.Sprintf("--%s=%s: want true or false (or --%s alone)", name, value, name)
	case time.Duration:
		return fmt.Sprintf("--%s %s: %s", name, value, durationProblem(value))
	case int:
		if _, err := strconv.Atoi(value); errors.Is(err, strconv.ErrRange) {
			return fmt.Sprintf("--%s %s: out of range", name, value)
		}
		return fmt.Sprintf("--%s %s: not a whole number", name, value)
	}
	return fmt.Sprintf("--%s %s: %s", name, value, strings.TrimPrefix(msg, m[0]))
}

// durationProblem says why s is no duration, in the words of
// time.ParseDuration's errors without their quoting of s.
func durationProblem(s string) string {
	_, err := time.ParseDuration(s)
	switch msg := fmt.Sprint(err); {
	case strings.Contains(msg, "missing unit"):
		return "missing unit (e.g. " + s + "s)"
	case strings.Contains(msg, "unknown unit"):
		unit := strings.TrimLeft(s, "+-0123456789.")
		return fmt.Sprintf("unknown unit %q (use ns, us, ms, s, m or h, e.g. 90s, 5m, 1h30m)", unit)
	}
	return "not a duration (e.g. 30s, 5m, 1h30m)"
}
