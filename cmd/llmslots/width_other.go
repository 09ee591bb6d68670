//go:build !unix

package main

import "os"

// terminalWidth is unknown here: lines are not cut.
func terminalWidth(f *os.File) int { return 0 }
