//go:build !linux

package filelock

import (
	"errors"
	"os"
)

// Served tickets are Linux's (they are spares' names): elsewhere no ticket
// carries an in-line lock.

// LockInLine takes nothing: false.
func LockInLine(f *os.File, name string) bool { return false }

// UnlockInLine does nothing.
func UnlockInLine(f *os.File, name string) {}

// WaitNotInLine cannot wait: errors.ErrUnsupported.
func WaitNotInLine(f *os.File, name string) error { return errors.ErrUnsupported }

// InLine reports nothing held: false.
func InLine(fd int, name string) bool { return false }

// AwaitNotInLine cannot wait: errors.ErrUnsupported.
func AwaitNotInLine(fd int, name string) error { return errors.ErrUnsupported }
