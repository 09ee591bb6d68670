//go:build windows

package filelock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

// NoFollow has no Windows counterpart: Open checks for a reparse point itself.
const NoFollow = 0

// Open creates path (O_EXCL), read-write, mode 0600, refusing a symlink there.
func Open(path string) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("is a symbolic link")}
	}
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
}

// TryLock locks byte 0 of f exclusively, as gofrs/flock does, so probes
// made through it and acquirers agree. The lock also blocks other handles'
// reads of that byte: status cannot read a held slot's record here.
func TryLock(f *os.File) (bool, error) {
	var ol windows.Overlapped
	err := windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION), errors.Is(err, windows.ERROR_IO_PENDING):
		return false, nil
	}
	return false, &fs.PathError{Op: "LockFileEx", Path: f.Name(), Err: err}
}

// Linked is always true on Windows: a file that some handle holds open
// cannot lose its name, because Go opens files without FILE_SHARE_DELETE.
func Linked(fs.FileInfo) bool { return true }

// RemoveAndClose closes f, then removes path, as Windows cannot delete an
// open file. It is safe all the same: a process that opened the file since
// holds it without delete sharing, so the removal fails.
func RemoveAndClose(f *os.File, path string, fi fs.FileInfo) error {
	if err := f.Close(); err != nil {
		return err
	}
	if StillAt(path, fi) {
		_ = os.Remove(path) // fails, harmlessly, when another holder has it open
	}
	return nil
}

// RemoveLocked drops lk's lock and handle, then deletes path if it is
// still the file lk held (Windows cannot delete an open file; a process
// that opened it in between makes the delete fail, as in RemoveAndClose).
func RemoveLocked(path string, lk *PathLock) error {
	fi, err := lk.Stat()
	lk.Unlock()
	if err == nil && StillAt(path, fi) {
		return os.Remove(path)
	}
	return nil
}

// WaitUnlocked blocks until no exclusive lock is held on byte 0 of f:
// LockFileEx shared, without LOCKFILE_FAIL_IMMEDIATELY, then unlocked.
func WaitUnlocked(f *os.File) error {
	var ol windows.Overlapped
	h := windows.Handle(f.Fd())
	if err := windows.LockFileEx(h, 0, 0, 1, 0, &ol); err != nil {
		return &fs.PathError{Op: "LockFileEx", Path: f.Name(), Err: err}
	}
	if err := windows.UnlockFileEx(h, 0, 1, 0, &ol); err != nil {
		return &fs.PathError{Op: "UnlockFileEx", Path: f.Name(), Err: err}
	}
	return nil
}
