//go:build !unix

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"

	"github.com/llmslots/llmslots"
)

// canExec reports whether run --exec works here.
const canExec = false

// execHolding: there is no exec that keeps a process's descriptors here.
func execHolding(g *llmslots.Guard, path string, argv []string) error {
	return fmt.Errorf("--exec is not supported on %s (use run without --exec): %w", runtime.GOOS, errors.ErrUnsupported)
}

// execCluster runs llmslots-etcd as a child (there is no exec here) and
// returns its exit status. Ctrl-C reaches it through the console; this
// process only waits for it to finish.
func execCluster(path string, argv []string) (int, error) {
	cmd := &exec.Cmd{Path: path, Args: argv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	err := cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}
