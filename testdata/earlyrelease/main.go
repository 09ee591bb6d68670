// Command earlyrelease takes one slot of a pool of 1 (the default pool),
// starts its arguments as a child through Guard.Command, and releases the
// slot at once, before the child ends, as a defer that fires on an early
// return would; then it prints "released" and waits for the child. The
// tests check that nobody else gets the slot while the child runs.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/llmslots/llmslots"
)

func main() {
	g, err := llmslots.Acquire(1, 10*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := g.Command(os.Args[1], os.Args[2:]...)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := g.Release(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("released")
	if err := cmd.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
