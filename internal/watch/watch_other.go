//go:build !linux

package watch

// New polls: inotify is Linux's. (kqueue could watch the directory on
// macOS and the BSDs; polling is the portable floor.)
func New(dir string) Watcher { return newPoller() }

// NetworkFS is not detected here; such pools work, but events from other
// hosts would not be seen anyway, since nothing here waits for events.
func NetworkFS(dir string) bool { return false }
