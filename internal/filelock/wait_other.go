//go:build !unix && !windows

package filelock

import (
	"errors"
	"os"
)

// WaitUnlocked fails with errors.ErrUnsupported: no locks here.
func WaitUnlocked(f *os.File) error { return errors.ErrUnsupported }
