//go:build !linux

// Command bench measures llmslots on Linux; see main.go.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench: runs on Linux only (it reads /proc)")
	os.Exit(1)
}
