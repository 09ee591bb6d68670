package filelock

import (
	"encoding/binary"
	"io/fs"
	"sync"

	"golang.org/x/sys/unix"
)

// EachName calls fn with each name in the directory dir, in no particular
// order, and no "." or "..": one open, getdents64 until the end, one
// close, and no allocation. The name passed to fn is valid only during
// the call. The queue directory is read at every release and every
// enqueue, and with hundreds of waiters a string for each name was most
// of the cost (see bench/README.md).
func EachName(dir string, fn func(name []byte)) error {
	fd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := direntBufs.Get().(*[direntBufSize]byte)
	defer direntBufs.Put(buf)
	for {
		n, err := unix.Getdents(fd, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "getdents64", Path: dir, Err: err}
		}
		if n <= 0 {
			return nil
		}
		if err := eachDirent(buf[:n], fn); err != nil {
			return &fs.PathError{Op: "getdents64", Path: dir, Err: err}
		}
	}
}

// The layout of struct linux_dirent64, the same on every architecture:
// inode (8 bytes), offset (8), record length (2), type (1), then the
// name, NUL-terminated and padded to the record length.
const (
	direntReclen = 16
	direntName   = 19
)

// eachDirent calls fn with the name of each live entry in b, which one
// getdents64 filled.
func eachDirent(b []byte, fn func(name []byte)) error {
	for len(b) > 0 {
		if len(b) < direntName {
			return unix.EBADMSG
		}
		reclen := int(binary.NativeEndian.Uint16(b[direntReclen:]))
		if reclen < direntName || reclen > len(b) {
			return unix.EBADMSG
		}
		rec := b[:reclen]
		b = b[reclen:]
		if binary.NativeEndian.Uint64(rec) == 0 {
			continue // no inode: a removed entry some filesystems still list
		}
		name := rec[direntName:]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		if string(name) == "." || string(name) == ".." {
			continue
		}
		fn(name)
	}
	return nil
}

// Names returns the names in the directory dir, in no particular order.
func Names(dir string) ([]string, error) {
	var names []string
	if err := EachName(dir, func(name []byte) { names = append(names, string(name)) }); err != nil {
		return nil, err
	}
	return names, nil
}

// direntBufs keeps the buffers EachName reads into. 32 KiB holds the
// entries of a line of 400 waiters in one read.
var direntBufs = sync.Pool{New: func() any { return new([direntBufSize]byte) }}

const direntBufSize = 32 << 10
