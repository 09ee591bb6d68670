//go:build unix

package fdpass

import (
	"io/fs"
	"os"

	"github.com/llmslots/llmslots/internal/filelock"
	"golang.org/x/sys/unix"
)

// Supported reports whether a lock can be passed to a child process here:
// on Unix a flock belongs to the open file, which a child shares.
const Supported = true

// KeepOnExec clears close-on-exec on f's descriptor and returns its number.
func KeepOnExec(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var ctlErr error
	err = rc.Control(func(u uintptr) {
		fd = int(u)
		var flags int
		if flags, ctlErr = unix.FcntlInt(u, unix.F_GETFD, 0); ctlErr == nil {
			_, ctlErr = unix.FcntlInt(u, unix.F_SETFD, flags&^unix.FD_CLOEXEC)
		}
	})
	if err == nil {
		err = ctlErr
	}
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// Adopt checks the inherited descriptor fd and returns a close-on-exec
// duplicate of it, with the identity of the file it holds. It works on a
// duplicate so that a descriptor that turns out not to be the locked file
// at path is left exactly as it was (closing it could break whatever it
// really is), and so that the original stays open for this process's own
// children.
func Adopt(fd int, path string) (*os.File, fs.FileInfo, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &fs.PathError{Op: "dup", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(dup), path)
	fi, err := checkAdopted(f, path)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// Dup returns a second descriptor of f's open file: closing it leaves the
// lock, which belongs to the open file, in place.
func Dup(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup := -1
	var dupErr error
	if err := rc.Control(func(u uintptr) { dup, dupErr = unix.FcntlInt(u, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, &fs.PathError{Op: "dup", Path: f.Name(), Err: dupErr}
	}
	return os.NewFile(uintptr(dup), f.Name()), nil
}

// checkAdopted verifies that f, opened on an inherited descriptor, is the
// file at path, still linked, and holds its lock.
func checkAdopted(f *os.File, path string) (fs.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	cur, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || !os.SameFile(fi, cur) || !filelock.Linked(fi) {
		return nil, ErrNotTheFile
	}
	// flock on the open file that already holds the lock succeeds; on any
	// other open file of a held slot it fails.
	ok, err := filelock.TryLock(f)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotTheFile
	}
	return fi, nil
}
