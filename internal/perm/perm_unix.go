//go:build unix

package perm

import (
	"fmt"
	"io/fs"
	"os"
	"slices"
	"syscall"
)

// envDir is the variable that chooses the default pool's directory,
// named in the advice of an UnsafeError.
const envDir = "LLMSLOTS_DIR"

// GroupsSupported reports whether pools can be shared by a Unix group.
const GroupsSupported = true

// Share gives path to group gid with mode.
func Share(path string, gid int, mode fs.FileMode) error {
	if err := os.Chown(path, -1, gid); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// InGroup reports whether this process may act as a member of gid: root,
// or a process whose effective or supplementary groups include it.
func InGroup(gid int) bool {
	if os.Geteuid() == 0 || os.Getegid() == gid {
		return true
	}
	groups, err := os.Getgroups()
	return err == nil && slices.Contains(groups, gid)
}

// OwnedByMe reports whether this process's user owns the file.
func OwnedByMe(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}

// CheckDir refuses a pool directory that would let someone else forge,
// delete or swap slot files. A private pool's (gid < 0) must be this
// user's and writable by nobody else; a group's must belong to that group,
// give it full access, be closed to others, and this process must be a
// member.
func CheckDir(dir string, fi fs.FileInfo, gid int) error {
	if gid >= 0 {
		return checkGroupDir(dir, fi, gid)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := os.Geteuid(); int(st.Uid) != uid {
			return unsafe("slot directory %s belongs to uid %d, not to you (uid %d); set %s to a directory of your own", dir, st.Uid, uid, envDir)
		}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return unsafe("slot directory %s is writable by group or others (mode %04o); run: chmod go-w %s", dir, perm, dir)
	}
	return nil
}

func checkGroupDir(dir string, fi fs.FileInfo, gid int) error {
	perm := fi.Mode().Perm()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Gid) != gid {
		return unsafe("slot directory %s belongs to group %d, not to the pool's group %d; run: chgrp %d %s", dir, st.Gid, gid, gid, dir)
	}
	if perm&0o002 != 0 {
		return unsafe("slot directory %s is writable by others (mode %04o); run: chmod o-w %s", dir, perm, dir)
	}
	if perm&0o070 != 0o070 {
		return unsafe("slot directory %s does not give its group full access (mode %04o); run: chmod 2770 %s", dir, perm, dir)
	}
	// Without setgid, files take their creator's own group, which the
	// other members cannot open: a dead member's slot would look held
	// forever. With the sticky bit, members cannot delete each other's
	// files: a dead member's slot could never be reclaimed.
	if fi.Mode()&fs.ModeSetgid == 0 {
		return unsafe("slot directory %s lacks the setgid bit (mode %04o): its files would get their makers' own groups, which other members cannot open; run: chmod 2770 %s", dir, octal(fi.Mode()), dir)
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		return unsafe("slot directory %s has the sticky bit (mode %04o): members could not remove a dead member's slot file; run: chmod 2770 %s", dir, octal(fi.Mode()), dir)
	}
	if !InGroup(gid) {
		return unsafe("you (uid %d) are not a member of group %d, which shares %s", os.Geteuid(), gid, dir)
	}
	return nil
}

func unsafe(format string, args ...any) error {
	return &UnsafeError{Msg: fmt.Sprintf(format, args...)}
}

// octal is a directory's mode as chmod(1) writes it, special bits included.
func octal(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}
