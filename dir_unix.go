//go:build unix

package llmslots

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

func checkDirOwner(dir string, fi fs.FileInfo, g group) error {
	if g.shared {
		return checkGroupDir(dir, fi, g)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := os.Geteuid(); int(st.Uid) != uid {
			return &wrapped{
				msg:      fmt.Sprintf("llmslots: slot directory %s belongs to uid %d, not to you (uid %d); set %s to a directory of your own", dir, st.Uid, uid, EnvDir),
				sentinel: ErrUnsafeDir,
			}
		}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return &wrapped{
			msg:      fmt.Sprintf("llmslots: slot directory %s is writable by group or others (mode %04o); run: chmod go-w %s", dir, perm, dir),
			sentinel: ErrUnsafeDir,
		}
	}
	return nil
}

// checkGroupDir accepts a group's pool directory: the group's, fully
// usable by it, closed to others, and this process one of the group.
func checkGroupDir(dir string, fi fs.FileInfo, g group) error {
	unsafe := func(format string, args ...any) error {
		return &wrapped{msg: "llmslots: " + fmt.Sprintf(format, args...), sentinel: ErrUnsafeDir}
	}
	perm := fi.Mode().Perm()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Gid) != g.gid {
		return unsafe("slot directory %s belongs to group %d, not to the pool's group %d; run: chgrp %d %s", dir, st.Gid, g.gid, g.gid, dir)
	}
	if perm&0o002 != 0 {
		return unsafe("slot directory %s is writable by others (mode %04o); run: chmod o-w %s", dir, perm, dir)
	}
	if perm&0o070 != 0o070 {
		return unsafe("slot directory %s does not give its group full access (mode %04o); run: chmod 2770 %s", dir, perm, dir)
	}
	if !inGroup(g.gid) {
		return unsafe("you (uid %d) are not a member of group %d, which shares %s", os.Geteuid(), g.gid, dir)
	}
	return nil
}
