//go:build !linux

package llmslots

// processStart is unknown here; liveness then rests on the pid alone.
func processStart(pid int) string { return "" }

// pidNamespace is unknown here.
func pidNamespace() string { return "" }
