//go:build !unix

package main

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/llmslots/llmslots"
)

// canExec reports whether run --exec works here.
const canExec = false

// execHolding: there is no exec that keeps a process's descriptors here.
func execHolding(g *llmslots.Guard, path string, argv []string) error {
	return fmt.Errorf("--exec is not supported on %s (use run without --exec): %w", runtime.GOOS, errors.ErrUnsupported)
}
