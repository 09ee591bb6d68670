//go:build unix

package perm

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// envDir chooses the default pool's directory, as the errors advise.
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

// inGroup reports whether this process may act as a member of gid: root,
// or a process whose effective or supplementary groups include it.
func inGroup(gid int) bool {
	if os.Geteuid() == 0 || os.Getegid() == gid {
		return true
	}
	groups, err := os.Getgroups()
	return err == nil && slices.Contains(groups, gid)
}

// CheckDir refuses a pool directory that would let someone else forge,
// delete or swap slot files. A private pool's (gid < 0) must be this
// user's and writable by nobody else; a group's must be that group's, give
// it full access and others none, and this process must be a member.
func CheckDir(dir string, fi fs.FileInfo, gid int) error {
	if gid >= 0 {
		return checkGroupDir(dir, fi, gid)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := os.Geteuid(); int(st.Uid) != uid {
			return fmt.Errorf("slot directory %s belongs to uid %d, not to you (uid %d); set %s to a directory of your own", dir, st.Uid, uid, envDir)
		}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		if fi.Mode()&fs.ModeSticky != 0 { // a shared place like /tmp: chmod go-w would break it for everyone
			return fmt.Errorf("slot directory %s is writable by group or others (mode %04o), a shared place; set %s to a directory of your own in it, such as %s/llmslots-%d (llmslots creates it, mode 0700)", dir, perm|0o1000, envDir, dir, os.Geteuid())
		}
		return fmt.Errorf("slot directory %s is writable by group or others (mode %04o); run: chmod go-w %s", dir, perm, dir)
	}
	return nil
}

func checkGroupDir(dir string, fi fs.FileInfo, gid int) error {
	perm := fi.Mode().Perm()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Gid) != gid {
		return fmt.Errorf("slot directory %s belongs to group %d, not to the pool's group %d; run: chgrp %d %s", dir, st.Gid, gid, gid, dir)
	}
	if perm&0o002 != 0 {
		return fmt.Errorf("slot directory %s is writable by others (mode %04o); run: chmod o-w %s", dir, perm, dir)
	}
	if perm&0o070 != 0o070 {
		return fmt.Errorf("slot directory %s does not give its group full access (mode %04o); run: chmod 2770 %s", dir, perm, dir)
	}
	// Without setgid, files take their maker's group, which other members
	// cannot open: a dead member's slot would look held forever. With the
	// sticky bit, members cannot delete a dead member's slot file.
	if fi.Mode()&fs.ModeSetgid == 0 {
		return fmt.Errorf("slot directory %s lacks the setgid bit (mode %04o): its files would get their makers' own groups, which other members cannot open; run: chmod 2770 %s", dir, octal(fi), dir)
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		return fmt.Errorf("slot directory %s has the sticky bit (mode %04o): members could not remove a dead member's slot file; run: chmod 2770 %s", dir, octal(fi), dir)
	}
	if !inGroup(gid) {
		return fmt.Errorf("you (uid %d) are not a member of group %d, which shares %s", os.Geteuid(), gid, dir)
	}
	return nil
}

// CheckParents refuses a pool directory that someone else could swap for
// another (a symbolic link to another of the victim's directories, say),
// as sshd's StrictModes does: every directory above it and every symbolic
// link on the way must belong to root or to this user, and no directory
// above it may be writable by others or its group unless sticky (as /tmp
// is) or the pool's group's. The pool directory itself is CheckDir's to
// judge; a path that does not exist yet is judged up to where it ends.
func CheckParents(dir string, gid int) error {
	todo := split(dir)
	cur := "/"
	rootFi, err := os.Lstat(cur)
	if err != nil {
		return nil
	}
	if err := checkAbove(cur, rootFi, dir, gid); err != nil {
		return err
	}
	for links := 0; len(todo) > 0; {
		next := filepath.Join(cur, todo[0])
		todo = todo[1:]
		fi, err := os.Lstat(next)
		if err != nil {
			return nil // missing: made by this user, below a checked directory
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if links++; links > 40 {
				return fmt.Errorf("too many symbolic links on the way to slot directory %s", dir)
			}
			if !ownedByRootOrMe(fi) {
				return fmt.Errorf("%s, on the way to slot directory %s, is a symbolic link of uid %d: whoever owns it chooses the pool; set %s to a path of your own", next, dir, owner(fi), envDir)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return nil
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			todo = append(split(target), todo...)
			continue
		}
		if len(todo) == 0 {
			return nil // the pool directory itself: see CheckDir
		}
		if err := checkAbove(next, fi, dir, gid); err != nil {
			return err
		}
		cur = next
	}
	return nil
}

// checkAbove judges one directory above the pool directory.
func checkAbove(path string, fi fs.FileInfo, dir string, gid int) error {
	if !fi.IsDir() {
		return nil // the pool's own checks report a path that is not one
	}
	if !ownedByRootOrMe(fi) {
		return fmt.Errorf("%s, above slot directory %s, belongs to uid %d, who could replace the pool directory; set %s to a directory under one only you (or root) can change", path, dir, owner(fi), envDir)
	}
	perm := fi.Mode().Perm()
	sticky := fi.Mode()&fs.ModeSticky != 0
	switch {
	case sticky:
		return nil
	case perm&0o002 != 0:
		return fmt.Errorf("%s, above slot directory %s, is writable by others (mode %04o) and not sticky: anyone could replace the pool directory; set %s to a directory under one only you (or root) can change", path, dir, perm, envDir)
	case perm&0o020 != 0 && !groupMayWrite(fi, gid):
		return fmt.Errorf("%s, above slot directory %s, is writable by its group (mode %04o) and not sticky: a member could replace the pool directory; run: chmod g-w %s, or set %s elsewhere", path, dir, perm, path, envDir)
	}
	return nil
}

// groupMayWrite accepts a group-writable directory whose group is the
// pool's (a group pool trusts its members), or this user's own primary
// group, which on systems with per-user groups is this user alone.
func groupMayWrite(fi fs.FileInfo, gid int) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	return gid >= 0 && int(st.Gid) == gid || int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getgid()
}

func ownedByRootOrMe(fi fs.FileInfo) bool {
	uid := owner(fi)
	return uid == -1 || uid == 0 || uid == os.Geteuid()
}

// owner returns the file's owner, or -1 when the platform does not say.
func owner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// split returns a path's components, without empty ones.
func split(path string) []string {
	var parts []string
	for _, p := range strings.Split(path, "/") {
		if p != "" && p != "." {
			parts = append(parts, p)
		}
	}
	return parts
}

// octal is a directory's mode as chmod(1) writes it, special bits included.
func octal(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint32(st.Mode) & 0o7777
	}
	return uint32(fi.Mode().Perm())
}
