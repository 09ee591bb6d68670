//go:build !unix && !windows

package llmslots

import (
	"errors"
	"io/fs"
	"os"

	"github.com/gofrs/flock"
)

// This platform has no file locks the package can rely on; every
// operation that needs one fails with errors.ErrUnsupported.
const openNoFollow = 0

func openSlotFile(path string, create bool) (*os.File, error) {
	return nil, &fs.PathError{Op: "open", Path: path, Err: errors.ErrUnsupported}
}

func tryLock(f *os.File) (bool, error) { return false, errors.ErrUnsupported }

func linked(fs.FileInfo) bool { return true }

func releaseFile(f *os.File, path string, fi fs.FileInfo) error { return f.Close() }

func lockShared(f *os.File) error { return errors.ErrUnsupported }

func unlockFile(f *os.File) error { return errors.ErrUnsupported }

func removeLocked(path string, lk *flock.Flock) error { return errors.ErrUnsupported }
