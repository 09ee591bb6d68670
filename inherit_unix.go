//go:build unix

package llmslots

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// inheritFiles passes files to cmd as the descriptors ins name: exec.Cmd
// dups each of ExtraFiles to 3, 4, ... in the child, without close-on-exec.
func inheritFiles(cmd *exec.Cmd, files []*os.File, ins []inheritance) error {
	cmd.ExtraFiles = append(cmd.ExtraFiles, files...)
	cmd.Env = withInheritance(cmd.Env, ins)
	return nil
}

// keepOnExec clears close-on-exec on f's descriptor and returns its number.
func keepOnExec(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("llmslots: %w", err)
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
		return -1, fmt.Errorf("llmslots: cannot keep the slot file open across exec: %w", err)
	}
	return fd, nil
}

// adoptFD checks the inherited descriptor fd and returns a close-on-exec
// duplicate of it. It works on a duplicate so that a descriptor that turns
// out not to be the slot is left exactly as it was (closing it could break
// whatever it really is), and so that the original stays open for this
// process's own children.
func adoptFD(fd int, path string) (*os.File, fs.FileInfo, error) {
	dup, err := unix.FcntlInt(uintptr(fd), fDupfdCloexec, 0)
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

// dupFile returns a second descriptor of f's open file: closing it leaves
// the lock, which belongs to the open file, in place.
func dupFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup := -1
	var dupErr error
	if err := rc.Control(func(u uintptr) { dup, dupErr = unix.FcntlInt(u, fDupfdCloexec, 0) }); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, &fs.PathError{Op: "dup", Path: f.Name(), Err: dupErr}
	}
	return os.NewFile(uintptr(dup), f.Name()), nil
}

// errNotTheSlot reports an inherited descriptor that is not the slot file.
var errNotTheSlot = errors.New("the descriptor is not the locked slot file")

// checkAdopted verifies that f, opened on an inherited descriptor, is the
// slot file at path and holds its lock.
func checkAdopted(f *os.File, path string) (fs.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	cur, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || !os.SameFile(fi, cur) || !linked(fi) {
		return nil, errNotTheSlot
	}
	// flock on the open file that already holds the lock succeeds; on any
	// other open file of a held slot it fails.
	ok, err := tryLock(f)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotTheSlot
	}
	return fi, nil
}
