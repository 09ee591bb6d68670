//go:build linux || freebsd || openbsd || netbsd || dragonfly

package filelock

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

// openDir opens the directory dir for reading its entries with getdents,
// retrying an open interrupted by a signal.
func openDir(dir string) (int, error) {
	for {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: dir, Err: err}
		}
		return fd, nil
	}
}
