// Command llmslots-etcd is "llmslots run", "status", "pause" and "resume" on a
// cluster-wide pool kept in etcd (package etcdslots): at most N processes
// at once across every host that reaches the cluster.
//
//	llmslots-etcd run --etcd host1:2379,host2:2379 --pool codex --max 10 -- codex exec "review this diff"
//	llmslots-etcd status --etcd host1:2379 --pool codex --max 10
//
// "llmslots run --etcd ...", and status, pause and resume so (or with
// LLMSLOTS_ETCD set), run this command with the same arguments, so the
// core command needs no etcd client. It lives in the etcdslots module:
//
//	go install github.com/llmslots/llmslots/etcdslots/cmd/llmslots-etcd@latest
//
// run takes a cluster slot (and with --local-max a slot of the host's file
// pool too), runs the command holding it, and exits with the command's
// status. When the slot may be lost (the holder could not renew its lease
// in time: see etcdslots.Guard.Lost) it stops the command and every
// process of its process group, SIGTERM then SIGKILL after --grace, and
// exits 76.
//
// "llmslots-etcd version" (or --version) prints the version it was built
// from, as "llmslots version" does.
//
// Exit status: the command's own for run (128+N when it dies of signal N),
// 75 when no slot freed in time, 76 when run stopped the command because
// the slot was lost, 69 when the cluster did not answer, 64 for a usage
// error, 126 or 127 when the command cannot be run or found, 1 for any
// other error.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	shared "github.com/llmslots/llmslots/internal/cli"
)

// Exit statuses: the core command's (internal/cli), and two of the
// cluster's own.
const (
	exitOK          = shared.ExitOK
	exitError       = shared.ExitError
	exitUsage       = shared.ExitUsage
	exitUnavailable = 69 // EX_UNAVAILABLE: the cluster did not answer
	exitBusy        = shared.ExitBusy
	exitLost        = 76 // the slot was lost while the command ran; it was stopped
	exitNoExec      = shared.ExitNoExec
	exitNotFound    = shared.ExitNotFound
)

// name is how messages name this command.
const name = "llmslots-etcd"

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printMainUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "status":
		return statusCmd(args[1:], stdout, stderr)
	case "pause":
		return pauseCmd(args[1:], stdout, stderr)
	case "resume":
		return resumeCmd(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			return dispatch([]string{args[1], "--help"}, stdout, stderr)
		}
		printMainUsage(stdout)
		return exitOK
	case "version", "-version", "--version":
		printVersion(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "%s: unknown subcommand %q; see %s help\n", name, printable(args[0]), name)
	return exitUsage
}

func printMainUsage(w io.Writer) {
	fmt.Fprintf(w, `%s: at most N processes at once across every host, with the slots in etcd.

Usage:
  %s
  %s
  %s
  %s
  %s version (or --version)

Subcommands:
  run      take a cluster slot and run a command holding it
  status   show each cluster slot's holder and the waiters in line
  pause    grant no slot of the cluster pool for a while
  resume   end a pause and forget throttle reports
  version  print the version this command was built from

Environment: LLMSLOTS_ETCD (the endpoints, when --etcd is not given),
LLMSLOTS_ETCD_PASSWORD (the password for --user), LLMSLOTS_DIR (the host's
pools, for --local-max). Exit status: run exits with its command's status
(128+N if it dies of signal N); 76: the slot was lost and the command was
stopped; 75: no slot in time; 69: the cluster did not answer; 64: usage
error; 126/127: the command cannot be run / was not found; 1: any other
error. "llmslots run|status|pause|resume --etcd ..." run this command. Run "%s SUBCOMMAND --help" for a subcommand's flags.
`, name, runSynopsis, statusSynopsis, pauseSynopsis, resumeSynopsis, name, name)
}

// failure reports err on one line and returns code.
func failure(stderr io.Writer, code int, err error) int {
	msg := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, err.Error())
	fmt.Fprintf(stderr, "%s: %s\n", name, msg)
	return code
}
