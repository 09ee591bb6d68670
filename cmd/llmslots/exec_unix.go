//go:build unix

package main

import (
	"syscall"

	"github.com/llmslots/llmslots"
)

// canExec reports whether run --exec works here.
const canExec = true

// execHolding replaces this process with path, keeping the slot: the
// locked descriptor stays open across exec, and the slot's record names
// the new program (same pid). It returns only on failure.
func execHolding(g *llmslots.Guard, path string, argv []string) error {
	env, err := g.PrepareExec(argv, nil)
	if err != nil {
		return err
	}
	return syscall.Exec(path, argv, env)
}
