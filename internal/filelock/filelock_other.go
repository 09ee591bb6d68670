//go:build !unix && !windows

package filelock

import (
	"errors"
	"io/fs"
	"os"
)

// This platform has no file locks the package can rely on; every
// operation that needs one fails with errors.ErrUnsupported.

// NoFollow is not available here.
const NoFollow = 0

// Open fails: without locks a slot file is of no use.
func Open(path string) (*os.File, error) {
	return nil, &fs.PathError{Op: "open", Path: path, Err: errors.ErrUnsupported}
}

// TryLock fails with errors.ErrUnsupported.
func TryLock(f *os.File) (bool, error) { return false, errors.ErrUnsupported }

// Linked cannot tell here and answers true.
func Linked(fs.FileInfo) bool { return true }

// RemoveAndClose only closes f.
func RemoveAndClose(f *os.File, path string, fi fs.FileInfo) error { return f.Close() }

// RemoveLocked fails with errors.ErrUnsupported.
func RemoveLocked(path string, lk *PathLock) error { return errors.ErrUnsupported }

// WaitUnlocked fails with errors.ErrUnsupported.
func WaitUnlocked(f *os.File) error { return errors.ErrUnsupported }
