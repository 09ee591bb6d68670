//go:build unix

package llmslots

// testForcePolling, set by tests, makes every waiter poll, as it does off
// Linux and on network filesystems.
var testForcePolling bool
