// Command llmslots limits how many processes of one user, across the whole
// host, run a command at once: shell scripts, Makefiles and harnesses in
// any language get the limit Go programs get from package llmslots.
//
//	llmslots run --pool codex --max 4 -- codex exec "review this diff"
//
// Subcommands: run (take a slot, run a command holding it), shim (put a
// slot in front of a program other tools spawn), status, release, cleanup,
// pause, resume, max and version (also --version). Run "llmslots help" or
// "llmslots SUBCOMMAND --help" for each.
//
// Exit status: the command's own for run (128+N when it dies of signal N),
// 75 when no slot freed in time, 64 for a usage error, 126 or 127 when the
// command cannot be run or found, 1 for any other error.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/llmslots/llmslots/internal/cli"
)

// Exit statuses: see internal/cli.
const (
	exitOK       = cli.ExitOK
	exitError    = cli.ExitError
	exitUsage    = cli.ExitUsage
	exitBusy     = cli.ExitBusy
	exitNoExec   = cli.ExitNoExec
	exitNotFound = cli.ExitNotFound
)

// A command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands in the order help shows them; filled in
// init because their functions refer back to it for help.
var commands []command

func init() {
	commands = []command{
		{"run", "take a slot and run a command holding it", runCmd},
		{"shim", "install a script that runs a program under a slot", shimCmd},
		{"status", "show each slot's state and holder", statusCmd},
		{"release", "free a stale slot, or stop its holder with --kill", releaseCmd},
		{"cleanup", "remove slot files left by dead holders", cleanupCmd},
		{"pause", "grant no slot of the pool for a while", pauseCmd},
		{"resume", "end a pause and forget throttle reports", resumeCmd},
		{"max", "show the default max and how it was derived", maxCmd},
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// dispatch runs the subcommand args name and returns the exit status.
func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printMainUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			for _, c := range commands {
				if c.name == args[1] {
					return c.run([]string{"--help"}, stdout, stderr)
				}
			}
		}
		printMainUsage(stdout)
		return exitOK
	case "version", "-version", "--version":
		printVersion(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "llmslots: unknown subcommand %q; see llmslots help\n", printable(args[0]))
	return exitUsage
}

func printMainUsage(w io.Writer) {
	fmt.Fprint(w, `llmslots: at most N processes of this user run a command at once, host-wide.

Usage:
  llmslots run [--pool NAME | --dir DIR | --etcd ENDPOINTS] [--max N] [--wait D] [--label TEXT] [--exec]
               [--throttled-on REGEX] [--throttled-exit CODE] -- CMD [ARGS...]
  llmslots shim NAME [--pool P] [--max N] [--wait D] [--bin-dir DIR] [--throttled-on REGEX] [--throttled-exit CODE]
  llmslots shim --remove NAME [--bin-dir DIR]
  llmslots status [--json] [--max N] [--pool NAME | --dir DIR | --etcd ENDPOINTS]
  llmslots release --slot N [--kill] [--grace 10s] [--pool NAME | --dir DIR]
  llmslots cleanup [--dry-run] [--max N] [--pool NAME | --dir DIR]
  llmslots pause --for D [--reason TEXT] [--pool NAME | --dir DIR | --etcd ENDPOINTS]
  llmslots resume [--pool NAME | --dir DIR | --etcd ENDPOINTS]
  llmslots max [--json]
  llmslots version (or --version)

Subcommands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Environment: LLMSLOTS_DIR (the default pool's directory), LLMSLOTS_MAX (the
default max), LLMSLOTS_GROUP (share every pool with the members of this Unix
group, a name or a gid), LLMSLOTS_ETCD (run, status, pause and resume use
the cluster pool in these etcd endpoints, through llmslots-etcd). Exit status: run exits with
its command's status (128+N if it dies of signal N); 75: no slot in time;
64: usage error; 126/127: the command cannot be run / was not found; 1: any
other error.
Run "llmslots SUBCOMMAND --help" for a subcommand's flags.
`)
}

// failure reports an error on one line and returns code. Control
// characters (a newline, an escape sequence in a path) become spaces.
func failure(stderr io.Writer, code int, err error) int {
	msg := strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, err.Error())
	if !strings.HasPrefix(msg, "llmslots") {
		msg = "llmslots: " + msg
	}
	fmt.Fprintln(stderr, msg)
	return code
}
