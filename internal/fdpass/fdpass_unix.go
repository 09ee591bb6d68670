//go:build unix

package fdpass

import (
	"errors"
	"io/fs"
	"os"

	"github.com/llmslots/llmslots/internal/filelock"
	"golang.org/x/sys/unix"
)

// Supported reports whether a lock can be passed to a child process here:
// on Unix a flock belongs to the open file, which a child shares.
const Supported = true

// errNotTheFile: an inherited descriptor is not the slot file it names.
var errNotTheFile = errors.New("the descriptor is not the locked slot file")

// KeepOnExec clears close-on-exec on f's descriptor and returns its number.
func KeepOnExec(f *os.File) (fd int, err error) {
	err = filelock.OnFd(f, func(n int) error {
		fd = n
		flags, err := unix.FcntlInt(uintptr(n), unix.F_GETFD, 0)
		if err == nil {
			_, err = unix.FcntlInt(uintptr(n), unix.F_SETFD, flags&^unix.FD_CLOEXEC)
		}
		return err
	})
	return fd, err
}

// Dup returns a second descriptor of f's open file: closing it leaves the
// lock, which belongs to the open file, in place.
func Dup(f *os.File) (*os.File, error) {
	var dup int
	err := filelock.OnFd(f, func(fd int) (err error) {
		dup, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, &fs.PathError{Op: "dup", Path: f.Name(), Err: err}
	}
	return os.NewFile(uintptr(dup), f.Name()), nil
}

// Adopt checks the inherited descriptor fd and returns a close-on-exec
// duplicate of it, with the identity of the file it holds: the file at path,
// still linked, and locked through this open file. The duplicate leaves fd
// as it was, whatever it is, and open for this process's own children.
func Adopt(fd int, path string) (*os.File, fs.FileInfo, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &fs.PathError{Op: "dup", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(dup), path)
	fi, err := f.Stat()
	if err == nil && (!fi.Mode().IsRegular() || !filelock.Linked(fi) || !filelock.StillAt(path, fi)) {
		err = errNotTheFile
	}
	if err == nil {
		// flock succeeds on the open file holding the lock, on no other.
		var ok bool
		if ok, err = filelock.TryLock(f); err == nil && !ok {
			err = errNotTheFile
		}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}
