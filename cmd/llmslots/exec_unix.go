//go:build unix

package main

import (
	"os"
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

// execCluster replaces this process with llmslots-etcd; it returns only on
// failure.
func execCluster(path string, argv []string) (int, error) {
	return 0, syscall.Exec(path, argv, os.Environ())
}
