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

	shared "github.com/llmslots/llmslots/internal/cli"
	"github.com/llmslots/llmslots/internal/textsafe"
)

// This file follows the core command's cmd/llmslots/usage.go, which lives
// in another module (its flagProblem and durationProblem are copied here):
// the two commands report a bad flag in the same words. A fix to one
// belongs in the other.

// newFlags makes a subcommand's flag set; parseFlags reports its errors.
func newFlags(sub string) *flag.FlagSet {
	fs := flag.NewFlagSet(name+" "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// printUsage writes the synopsis, the description when about is not "",
// and the flags, written --flag.
func printUsage(fs *flag.FlagSet, w io.Writer, synopsis, about string) {
	fmt.Fprintf(w, "Usage: %s\n", synopsis)
	if about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(about))
	}
	fmt.Fprint(w, "\nFlags:\n")
	shared.PrintFlags(fs, w)
}

// notHere are core flags that have no meaning for a cluster pool, and why.
var notHere = map[string]string{
	"dir":  "--dir names a host's directory; a cluster pool is named by --pool (and --prefix)",
	"exec": "--exec cannot be used with a cluster slot: someone must stay behind to renew its lease",
	"shim": "shims run the host's pools; a cluster pool is not supported there yet",
}

// parseFlags parses args; done is true when the caller should return code
// (help was shown, or the flags were wrong).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, synopsis, about string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		printUsage(fs, stdout, synopsis, about)
		return exitOK, true
	}
	return usageError(fs, stderr, "%s", flagProblem(fs, err)), true
}

// usageError reports a usage error on one line, pointing to --help, and
// returns exitUsage: the whole usage, printed after the message, pushed
// the message off the screen (as in the core command, issue 22, item 6).
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
// the value is refused; a core flag that means nothing here, why.
func flagProblem(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := flagUndefined.FindStringSubmatch(msg); m != nil {
		if why, ok := notHere[m[1]]; ok {
			return why
		}
		return "unknown flag --" + printable(m[1])
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
		return printable(msg)
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

// printable replaces control characters (textsafe.IsControl) and invalid
// UTF-8 by "?", for text a message repeats but this command did not
// choose (a flag's value).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if textsafe.IsControl(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}
