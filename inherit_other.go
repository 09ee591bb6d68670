//go:build !unix

package llmslots

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
)

// A lock here belongs to the process that took it (LockFileEx on Windows):
// a child cannot keep it after its parent exits, so no slot is handed on.
func inheritFiles(cmd *exec.Cmd, files []*os.File, ins []inheritance) error {
	return fmt.Errorf("llmslots: handing a slot to a child process is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

func keepOnExec(f *os.File) (int, error) {
	return -1, fmt.Errorf("llmslots: keeping a slot across exec is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

func adoptFD(fd int, path string) (*os.File, fs.FileInfo, error) {
	return nil, nil, errors.ErrUnsupported
}

// dupFile returns a stand-in for a nested guard to close: the null device.
// Closing it leaves the outer guard's lock alone.
func dupFile(f *os.File) (*os.File, error) {
	return os.Open(os.DevNull)
}
