package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/internal/cli"
)

const statusAbout = `
Shows each slot of the pool: its state (free, held, or stale: left by a
holder that died), holder pid, age, label and command, decided by probing
each slot's lock. Without --max, the pool size is the largest max its
holders and waiters recorded (the default max when none did). --json
prints the library's Status as is. With --etcd ENDPOINTS (or
LLMSLOTS_ETCD set), llmslots-etcd shows the cluster pool.`

// statusCmd is "llmslots status".
func statusCmd(args []string, stdout, stderr io.Writer) int {
	if wantsCluster(args) {
		return runCluster("status", args, stderr)
	}
	fs := newFlags("status", "llmslots status [--json] [--max N] [--pool NAME | --dir DIR | --etcd ENDPOINTS]", statusAbout)
	var pf poolFlags
	pf.register(fs, "the pool size `N`")
	// Its default is not run's: said in full.
	fs.Lookup("max").Usage = fmt.Sprintf("the pool size `N` to report on: slots 0..N-1 are listed, and free ones counted (1..%d); default: the largest max that the processes using the pool recorded, else $LLMSLOTS_MAX, else from CPUs and memory (see llmslots max)", llmslots.MaxSlots)
	fs.String("etcd", "", etcdUsage)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	pool, st, code, done := poolStatus(fs, &pf, args, stdout, stderr)
	if done {
		return code
	}
	from := ""
	if !cli.IsSet(fs, "max") {
		// The processes using the pool know its size better than this
		// machine's default: read it with the max they recorded.
		if maxes := recordedMaxes(st); len(maxes) > 0 {
			if m := maxes[len(maxes)-1]; m != st.Max {
				var err error
				if st, err = pool.ReadStatus(m); err != nil {
					return failure(stderr, exitError, err)
				}
			}
			from = ", as its holders and waiters recorded"
			if len(maxes) > 1 {
				from = fmt.Sprintf(", the largest of %s that its holders and waiters recorded", joinInts(maxes))
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return failure(stderr, exitError, err)
		}
		return exitOK
	}
	printStatus(stdout, st, from)
	return exitOK
}

// recordedMaxes lists, in increasing order, the max values the live
// holders and waiters of st recorded.
func recordedMaxes(st llmslots.Status) []int {
	var maxes []int
	for _, s := range st.Slots {
		if s.State == llmslots.StateHeld && s.Max > 0 {
			maxes = append(maxes, s.Max)
		}
	}
	for _, w := range st.Waiting {
		if w.Max > 0 {
			maxes = append(maxes, w.Max)
		}
	}
	slices.Sort(maxes)
	return slices.Compact(maxes)
}

// printStatus writes st as a table; from says where its max came from
// when --max did not give it.
func printStatus(w io.Writer, st llmslots.Status, from string) {
	fmt.Fprintf(w, "pool %s (max %d%s): %d held, %d free, %d stale\n", st.Dir, st.Max, from, st.Active, st.Free, st.Stale)
	for _, line := range throttleLines(st.Throttle, st.Max) {
		fmt.Fprintln(w, line)
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
