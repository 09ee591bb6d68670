//go:build !linux

package sysinfo

// Root would read the system's limits below Dir; nothing is read here.
type Root struct{ Dir string }

// CPUQuota is unknown here: 0.
func (Root) CPUQuota() (int, string) { return 0, "" }

// MemAvailable is unknown here.
func (Root) MemAvailable() (uint64, string, bool) { return 0, "", false }
