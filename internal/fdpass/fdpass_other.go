//go:build !unix

package fdpass

import (
	"errors"
	"io/fs"
	"os"
)

// Supported is false: a lock here (LockFileEx on Windows) belongs to the
// process that took it, so a child cannot keep it after its parent exits.
const Supported = false

// KeepOnExec fails with errors.ErrUnsupported: no exec here keeps descriptors.
func KeepOnExec(f *os.File) (int, error) { return -1, errors.ErrUnsupported }

// Adopt fails with errors.ErrUnsupported.
func Adopt(fd int, path string) (*os.File, fs.FileInfo, error) {
	return nil, nil, errors.ErrUnsupported
}

// Dup returns a stand-in for a nested guard to close: the null device.
// Closing it leaves the outer guard's lock alone.
func Dup(f *os.File) (*os.File, error) {
	return os.Open(os.DevNull)
}
