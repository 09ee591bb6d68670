//go:build unix

package filelock

import (
	"os"

	"golang.org/x/sys/unix"
)

// Rename renames from to to with rename(2) alone. os.Rename first looks
// at to (an lstat) to refuse replacing a directory with a file, which
// rename(2) refuses anyway (EISDIR); a ticket's rename into line, made at
// every wait, need not pay for the look.
func Rename(from, to string) error {
	for {
		err := unix.Rename(from, to)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
		}
		return nil
	}
}
