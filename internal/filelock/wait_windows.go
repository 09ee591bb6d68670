//go:build windows

package filelock

import (
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

// WaitUnlocked blocks until no exclusive lock is held on byte 0 of f,
// then returns holding nothing: LockFileEx shared, without
// LOCKFILE_FAIL_IMMEDIATELY, then unlocked.
func WaitUnlocked(f *os.File) error {
	var ol windows.Overlapped
	if err := windows.LockFileEx(windows.Handle(f.Fd()), 0, 0, 1, 0, &ol); err != nil {
		return &fs.PathError{Op: "LockFileEx", Path: f.Name(), Err: err}
	}
	return unlock(f)
}
