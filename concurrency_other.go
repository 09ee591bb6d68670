//go:build !linux

package llmslots

// sysRoot has nothing to read here: CPUs come from runtime.NumCPU and
// memory does not limit the default.
type sysRoot struct{}

func (sysRoot) cpuQuota() (int, string) { return 0, "" }

func (sysRoot) memAvailable() (uint64, string, bool) { return 0, "", false }
