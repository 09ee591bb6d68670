package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/llmslots/llmslots"
)

const statusSynopsis = name + " status [--etcd ENDPOINTS] --max N [--pool NAME] [--json] [--timeout D] [--prefix P] [--cacert FILE] [--cert FILE --key FILE] [--user NAME]"

const statusAbout = `
Shows each slot of the cluster pool: free, held (with the holder's host,
pid, age, label and command) or stale (its lease has expired, and the
server deletes it shortly; or it has no lease, and the next run that finds
every slot taken deletes it), then the waiters of every host in the order they
will be served. --json prints the library's Status as is (its "dir" is
etcd://PREFIX/NAME). A line "throttled: ..." says what of a pause or a
lowered limit (Guard.Throttled, run --throttled-on, pause) is in effect.
The cluster not answering within --timeout: exit 69.`

// statusCmd is "llmslots-etcd status".
func statusCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status")
	var cf clusterFlags
	cf.register(fs, "the pool size `N` to report on: slots 0..N-1 are listed, and free ones counted")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after `D` if the cluster does not answer")
	if code, done := parseFlags(fs, args, stdout, stderr, statusSynopsis, statusAbout); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	}
	if msg := cf.check(fs); msg != "" {
		return usageError(fs, stderr, "%s", msg)
	}
	if *timeout <= 0 {
		return usageError(fs, stderr, "--timeout must be > 0, got %v", *timeout)
	}
	cli, pool, err := cf.connect(dialFor(*timeout), "")
	switch {
	case errors.Is(err, llmslots.ErrInvalid):
		return usageError(fs, stderr, "%v", err)
	case err != nil:
		return failure(stderr, errorCode(err), err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	st, err := pool.ReadStatus(ctx, cf.max)
	if err != nil {
		if unreachable(err) {
			return failure(stderr, exitUnavailable, fmt.Errorf("the cluster at %s did not answer within %v: %v", cf.endpoints, *timeout, err))
		}
		return failure(stderr, exitError, err)
	}
	if st.OtherMaxes == nil {
		st.OtherMaxes = []int{} // never null in JSON, as the core's
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return failure(stderr, exitError, err)
		}
		return exitOK
	}
	printStatus(stdout, st)
	return exitOK
}

// printStatus writes st as tables, as "llmslots status" does, with each
// holder's and waiter's host.
func printStatus(w io.Writer, st llmslots.Status) {
	fmt.Fprintf(w, "pool %s (max %d): %d held, %d free, %d stale\n", st.Dir, st.Max, st.Active, st.Free, st.Stale)
	for _, l := range throttleLines(st.Throttle, st.Max) {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tSTATE\tHOST\tPID\tAGE\tLABEL\tCOMMAND")
	for _, s := range st.Slots {
		pid, age := "-", "-"
		if s.PID > 0 {
			pid = strconv.Itoa(s.PID)
		}
		if !s.Since.IsZero() {
			age = time.Duration(s.AgeSecs * float64(time.Second)).Round(time.Second).String()
		}
		cmd := orDash(shorten(s.Command, 80))
		if s.Detail != "" {
			cmd += " [" + s.Detail + "]"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", s.SlotID, s.State, orDash(s.Host), pid, age, orDash(s.Label), cmd)
	}
	tw.Flush()
	if len(st.Waiting) == 0 && len(st.DeadWaiters) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%d waiting", len(st.Waiting))
	if n := len(st.DeadWaiters); n > 0 {
		fmt.Fprintf(w, " (and %d dead waiters, which the line skips)", n)
	}
	fmt.Fprintln(w)
	if len(st.Waiting) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POS\tHOST\tPID\tWAITED\tLABEL\tCOMMAND")
	for _, q := range st.Waiting {
		waited := time.Duration(q.WaitedSecs * float64(time.Second)).Round(100 * time.Millisecond).String()
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", q.Position, orDash(q.Host), q.PID, waited, orDash(q.Label), orDash(shorten(q.Command, 80)))
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shorten cuts s to at most n runes, marking the cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
