//go:build !unix

package main

import "os"

// terminate cannot ask politely here (there is no SIGTERM on Windows): it
// kills, and the grace period is moot.
func terminate(pid int) error { return forceKill(pid) }

func forceKill(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
