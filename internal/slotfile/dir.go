package slotfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/llmslots/llmslots/internal/perm"
)

// ErrUnsafeDir is matched by the errors of a pool directory that is not
// safe to use: not a directory, writable by others, owned by another user,
// or holding at its queue's path what llmslots never makes.
var ErrUnsafeDir = errors.New("llmslots: unsafe slot directory")

// unsafeError is an ErrUnsafeDir with the reason and the fix.
type unsafeError struct{ msg string }

func (e *unsafeError) Error() string        { return e.msg }
func (e *unsafeError) Is(target error) bool { return target == ErrUnsafeDir }

// Prepare creates the pool directory dir and its queue if missing, and
// checks both; envDir, the variable that chooses another, is for messages.
func (m Maker) Prepare(dir, envDir string) error {
	exists, err := m.Inspect(dir, envDir)
	if err == nil && !exists {
		if err := m.mkdir(dir, true); err != nil {
			return fmt.Errorf("llmslots: cannot create slot directory: %w", err)
		}
		_, err = m.Inspect(dir, envDir)
	}
	if err != nil {
		return err
	}
	// Tickets are made by path in the queue directory: a symbolic link
	// there would be followed, and anything but a directory breaks a wait.
	qdir := filepath.Join(dir, QueueDir)
	qfi, err := os.Lstat(qdir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := m.mkdir(qdir, false); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("llmslots: cannot create the queue directory: %w", err)
		}
		qfi, err = os.Lstat(qdir)
	}
	if err != nil {
		return fmt.Errorf("llmslots: queue directory: %w", err)
	}
	if !qfi.IsDir() {
		return &unsafeError{fmt.Sprintf("llmslots: %s is %s, which llmslots never makes; remove it (rm -r %s) and the queue is made again at the next acquire",
			qdir, Describe(qfi), qdir)}
	}
	return nil
}

// Inspect checks the pool directory dir without creating anything: exists
// is false when it is missing (no error). It refuses what is not a
// directory, or what others could tamper with (see package perm).
func (m Maker) Inspect(dir, envDir string) (exists bool, err error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("llmslots: slot directory: %w", err)
	}
	if !fi.IsDir() {
		return true, &unsafeError{fmt.Sprintf("llmslots: slot directory %s is not a directory; remove it or set %s to a directory of your own", dir, envDir)}
	}
	gid := -1
	if m.Shared {
		gid = m.GID
	}
	if err = perm.CheckDir(dir, fi, gid); err == nil {
		err = perm.CheckParents(dir, gid)
	}
	if err != nil {
		return true, &unsafeError{"llmslots: " + err.Error()}
	}
	return true, nil
}

// mkdir makes dir (and its parents) private to its owner; in a group's
// pool it is built under a hidden name with the group's ownership and
// mode, then renamed into place: no member ever meets it half made.
func (m Maker) mkdir(dir string, pool bool) error {
	if !m.Shared {
		return os.MkdirAll(dir, 0o700)
	}
	tmp := hiddenBeside(dir)
	err := m.build(tmp, pool)
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		if fi, serr := os.Lstat(dir); serr == nil && fi.IsDir() {
			return nil // made meanwhile by another member
		}
	}
	return err
}

// build makes a group's directory dir, with a queue directory inside if pool.
func (m Maker) build(dir string, pool bool) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if pool {
		if err := m.build(filepath.Join(dir, QueueDir), false); err != nil {
			return err
		}
	}
	return perm.Share(dir, m.GID, fs.ModeSetgid|0o770)
}
