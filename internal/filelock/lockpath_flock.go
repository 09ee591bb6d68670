//go:build !unix

package filelock

import (
	"io/fs"

	"github.com/gofrs/flock"
)

// A PathLock is an exclusive lock taken by TryLockPath.
type PathLock struct{ lk *flock.Flock }

// TryLockPath is TryLock on path (flag: os.O_RDONLY or os.O_RDWR), through
// gofrs/flock: the lock when taken; nil, false, nil when another holds it.
func TryLockPath(path string, flag int) (lk *PathLock, locked bool, err error) {
	l := flock.New(path, flock.SetFlag(flag|NoFollow))
	if locked, err = l.TryLock(); err != nil || !locked {
		return nil, false, err
	}
	return &PathLock{l}, true, nil
}

// Stat describes the locked file.
func (l *PathLock) Stat() (fs.FileInfo, error) { return l.lk.Stat() }

// Unlock drops the lock and closes the file.
func (l *PathLock) Unlock() { l.lk.Unlock() }
