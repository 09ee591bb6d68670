package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/llmslots/llmslots"
)

const statusAbout = `
Shows each slot of the pool: its state (free, held, or stale: left by a
holder that died), holder pid, age, label and command, decided by probing
each slot's lock. --json prints the library's Status as is. With --etcd
ENDPOINTS (or LLMSLOTS_ETCD set), llmslots-etcd shows the cluster pool.`

// statusCmd is "llmslots status".
func statusCmd(args []string, stdout, stderr io.Writer) int {
	if wantsCluster(args) {
		return runCluster("status", args, stderr)
	}
	fs := newFlags("status", "llmslots status [--json] [--max N] [--pool NAME | --dir DIR | --etcd ENDPOINTS]", statusAbout)
	var pf poolFlags
	pf.register(fs, "the pool size `N` to report on: slots 0..N-1 are listed, and free ones counted")
	fs.String("etcd", "", etcdUsage)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	_, st, code, done := poolStatus(fs, &pf, args, stdout, stderr)
	if done {
		return code
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

// printStatus writes st as a table.
func printStatus(w io.Writer, st llmslots.Status) {
	fmt.Fprintf(w, "pool %s (max %d): %d held, %d free, %d stale\n", st.Dir, st.Max, st.Active, st.Free, st.Stale)
	if line := throttleLine(st.Throttle, st.Max); line != "" {
		fmt.Fprintf(w, "throttled: %s\n", line)
	}
	if len(st.OtherMaxes) > 0 {
		fmt.Fprintf(w, "warning: other holders or waiters use this pool with max %s; each process enforces its own max\n", joinInts(st.OtherMaxes))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tSTATE\tPID\tAGE\tLABEL\tCOMMAND")
	for _, s := range st.Slots {
		pid, age := "-", "-"
		if s.PID > 0 {
			pid = strconv.Itoa(s.PID)
		}
		if !s.Since.IsZero() {
			age = (time.Duration(s.AgeSecs * float64(time.Second))).Round(time.Second).String()
		}
		label, cmd := orDash(s.Label), orDash(shorten(s.Command, 80))
		if s.Detail != "" {
			cmd += " [" + s.Detail + "]"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.SlotID, s.State, pid, age, label, cmd)
	}
	tw.Flush()
	printWaiters(w, st)
}

// printWaiters lists the queue, in the order its waiters will be served.
func printWaiters(w io.Writer, st llmslots.Status) {
	if len(st.Waiting) == 0 && len(st.DeadWaiters) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%d waiting", len(st.Waiting))
	if n := len(st.DeadWaiters); n > 0 {
		fmt.Fprintf(w, " (and %d dead waiter's tickets, skipped; `llmslots cleanup` removes them)", n)
	}
	fmt.Fprintln(w)
	if len(st.Waiting) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POS\tPID\tWAITED\tLABEL\tCOMMAND")
	for _, q := range st.Waiting {
		waited := (time.Duration(q.WaitedSecs * float64(time.Second))).Round(100 * time.Millisecond).String()
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", q.Position, q.PID, waited, orDash(q.Label), orDash(shorten(q.Command, 80)))
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
