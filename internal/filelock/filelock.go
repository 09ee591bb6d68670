// Package filelock holds the file operations the slot protocol builds on
// that differ by operating system: an open that follows no link, a
// non-blocking exclusive lock, a blocking wait for a lock to be free, and
// deleting a locked file in the order the platform allows.
package filelock

import (
	"io/fs"
	"os"
)

// StillAt reports whether path names the file fi describes.
func StillAt(path string, fi fs.FileInfo) bool {
	cur, err := os.Lstat(path)
	return err == nil && os.SameFile(fi, cur)
}
