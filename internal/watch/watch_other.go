//go:build !linux

package watch

// New waits on locks: inotify is Linux's, and the locks wake a waiter on
// every platform (kqueue could watch the directory on macOS and the BSDs,
// but would be a second mechanism that Linux tests never run).
func New(netfs bool) Watcher { return newLockWatcher() }

// NetworkFS is not detected here; such pools work, but events from other
// hosts would not be seen anyway, since nothing here waits for events.
func NetworkFS(dir string) bool { return false }
