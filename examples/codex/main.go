// Command codex-slot is the README's first snippet as a whole program: it
// takes one of 3 slots of the default pool, waiting up to 2 minutes, and
// runs `codex exec` holding the slot. The child holds the slot too, so the
// limit holds for the codex processes themselves, even when this program
// is killed while codex runs.
//
//	go run ./examples/codex "review the diff in HEAD"
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/llmslots/llmslots"
)

func main() {
	if err := review(strings.Join(os.Args[1:], " ")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func review(prompt string) error {
	g, err := llmslots.Acquire(3, 2*time.Minute)
	if err != nil {
		return err
	}
	defer g.Release()
	return g.Command("codex", "exec", prompt).Run()
}
