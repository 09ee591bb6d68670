package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// freeCopied gives back the disk (or, on tmpfs, the memory) of the first
// n bytes of the command's stderr file, copied already: a hole punched
// there keeps every offset, so the command's appends and the copy's reads
// go on as before. A file system without holes keeps them, as elsewhere.
func freeCopied(f *os.File, n int64) {
	unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, n)
}
