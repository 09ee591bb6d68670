//go:build unix

package llmslots

import (
	"io/fs"
	"os"
	"slices"
	"syscall"
)

const groupsSupported = true

// shareWithGroup gives path to g's group with mode.
func shareWithGroup(path string, g group, mode fs.FileMode) error {
	if err := os.Chown(path, -1, g.gid); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// inGroup reports whether this process may act as a member of gid: root,
// or a process whose effective or supplementary groups include it.
func inGroup(gid int) bool {
	if os.Geteuid() == 0 || os.Getegid() == gid {
		return true
	}
	groups, err := os.Getgroups()
	return err == nil && slices.Contains(groups, gid)
}

// ownedByMe reports whether this process's user owns the file.
func ownedByMe(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
