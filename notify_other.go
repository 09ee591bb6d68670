//go:build !linux

package llmslots

// newWatcher polls: inotify is Linux's. (kqueue could watch the directory
// on macOS and the BSDs; polling is the portable floor.)
func newWatcher(dir string) watcher { return newPoller() }

// networkFS is not detected here; such pools work, but see README.
func networkFS(dir string) bool { return false }
