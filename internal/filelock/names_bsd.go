//go:build freebsd || openbsd || netbsd || dragonfly

package filelock

import (
	"io/fs"
	"sync"

	"golang.org/x/sys/unix"
)

// Names returns the names in the directory dir, in no particular order:
// one open, getdents until the end, one close. os.File's Readdirnames
// costs five calls more (it asks Go's poller to take the descriptor, which
// fails for a directory, and sets and clears O_NONBLOCK around that), and
// the queue directory is read at every wake-up of every waiter.
//
// macOS is not among these systems: its getdirentries is private, and
// x/sys emulates it with a new directory stream per call that counts the
// entries to skip, which misses or repeats names when the directory
// changes between two reads (as .queue does all the time).
func Names(dir string) ([]string, error) {
	fd, err := openDir(dir)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := direntBufs.Get().(*[8192]byte)
	defer direntBufs.Put(buf)
	var names []string
	for {
		n, err := unix.ReadDirent(fd, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// direntBufs keeps the buffers Names reads into: the queue is listed
// often, and 8 KiB each time would feed the garbage collector.
var direntBufs = sync.Pool{New: func() any { return new([8192]byte) }}
