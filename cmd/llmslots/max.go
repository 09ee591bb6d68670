package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/llmslots/llmslots"
)

const maxAbout = `
Prints the max that run, status and cleanup use when --max is not given,
and how it was derived: LLMSLOTS_MAX if set to 1..1024, else
min(CPUs, available memory / 350 MiB, 16), honouring cgroup limits.`

// maxCmd is "llmslots max".
func maxCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("max", "llmslots max [--json]", maxAbout)
	asJSON := fs.Bool("json", false, "print the figures as JSON")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	}
	c := llmslots.ExplainMaxConcurrency()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(c); err != nil {
			return failure(stderr, exitError, err)
		}
		return exitOK
	}
	if c.Source == llmslots.EnvMax {
		fmt.Fprintf(stdout, "max %d, from %s\n", c.Max, llmslots.EnvMax)
	} else {
		fmt.Fprintf(stdout, "max %d = min(CPUs, memory / %d MiB, 16), at least 1\n", c.Max, c.WorkerMemory>>20)
	}
	cpus := fmt.Sprint(c.CPUs)
	if c.CPULimit != "" {
		cpus += " (lowered by " + c.CPULimit + ")"
	}
	fmt.Fprintf(stdout, "  CPUs:         %s\n", cpus)
	if c.MemKnown {
		mem := fmt.Sprintf("%.1f GiB available, room for %d", float64(c.MemAvailable)/(1<<30), c.ByMemory)
		if c.MemLimit != "" {
			mem += " (lowered by " + c.MemLimit + ")"
		}
		fmt.Fprintf(stdout, "  memory:       %s\n", mem)
	} else {
		fmt.Fprintf(stdout, "  memory:       unknown here; not a limit\n")
	}
	switch {
	case c.EnvError != "":
		fmt.Fprintf(stdout, "  %s: %s\n", llmslots.EnvMax, c.EnvError)
	case c.Source == llmslots.EnvMax:
		fmt.Fprintf(stdout, "  %s: %d (overrides the computed value)\n", llmslots.EnvMax, c.Max)
	default:
		fmt.Fprintf(stdout, "  %s: unset\n", llmslots.EnvMax)
	}
	return exitOK
}
