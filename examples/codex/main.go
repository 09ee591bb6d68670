// Command codex-slot is the README's first snippet as a whole program: it
// takes one of 3 slots of the default pool, waiting up to 2 minutes, and
// runs `codex exec` holding the slot. The child holds the slot too, so the
// limit holds for the codex processes themselves, even when this program
// is killed while codex runs. When codex says the provider refused (a 429,
// a usage cap), every process of the pool is told (Guard.ReportLimit).
//
//	go run ./examples/codex "review the diff in HEAD"
//	go run ./examples/codex -o review.md "review the diff in HEAD"
//
// codex writes to this program's own stdout, or with -o to a file, and its
// stderr to a log file that this program shows once codex is done: to
// descriptors it inherits, never to a pipe this program drains
// (cmd.Output, a bytes.Buffer, StdoutPipe). If this program is killed,
// codex keeps the slot and runs on; a pipe would then have no reader, and
// codex's next write would kill it with SIGPIPE: the slot held for
// nothing, the review lost. A file outlives this program.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/llmslots/llmslots"
)

func main() {
	out := flag.String("o", "", "write codex's output to this `file` (default: this program's stdout)")
	flag.Parse()
	if err := review(strings.Join(flag.Args(), " "), *out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func review(prompt, outPath string) error {
	g, err := llmslots.Acquire(3, 2*time.Minute)
	if err != nil {
		return err
	}
	defer g.Release()
	log, err := os.CreateTemp("", "codex-*.log")
	if err != nil {
		return err
	}
	defer os.Remove(log.Name())
	defer log.Close()
	cmd := g.Command("codex", "exec", prompt)
	// *os.File values are handed to the child as they are: no pipe, no
	// copying goroutine here that dies with this process.
	cmd.Stdout, cmd.Stderr = os.Stdout, log
	if outPath != "" {
		f, err := os.Create(outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		cmd.Stdout = f
	}
	err = cmd.Run()
	printed, _ := os.ReadFile(log.Name())
	os.Stderr.Write(printed)
	if l, ok := llmslots.DetectLimit(printed); ok {
		g.ReportLimit(l) // every process of the pool slows down, or waits for the reset
	}
	return err
}
