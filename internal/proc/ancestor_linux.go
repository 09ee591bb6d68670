package proc

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// HeldByAncestor reports whether the file at path is flock-locked by an
// ancestor of this process (its parent, grandparent, ...), as /proc/locks
// tells: the one case where a process that lost the descriptor its parent
// handed it (a Python layer closes it, a shell or sandbox does) must not
// wait for the slot, since it would be waiting on itself. /proc/locks
// shows pids as this pid namespace sees them, and the parent chain is
// walked in the same namespace, so a holder in another namespace is never
// taken for an ancestor.
func HeldByAncestor(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	holders := flockHolders(uint64(st.Dev), st.Ino)
	if len(holders) == 0 {
		return false
	}
	for pid := parentOf(os.Getpid()); pid > 1; pid = parentOf(pid) {
		if holders[pid] {
			return true
		}
	}
	return false
}

// flockHolders returns the pids that hold a FLOCK lock on the file with
// device dev and inode ino. A line of /proc/locks reads
//
//	1: FLOCK  ADVISORY  WRITE 4242 00:2a:1234567 0 EOF
//
// and a blocked request has "->" after the ordinal; those hold nothing.
func flockHolders(dev, ino uint64) map[int]bool {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil
	}
	defer f.Close()
	want := strconv.FormatUint(ino, 10)
	major, minor := uint64(unix.Major(dev)), uint64(unix.Minor(dev))
	holders := map[int]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" {
			continue
		}
		id := strings.Split(fields[5], ":")
		if len(id) != 3 || id[2] != want {
			continue
		}
		maj, err1 := strconv.ParseUint(id[0], 16, 64)
		min, err2 := strconv.ParseUint(id[1], 16, 64)
		if err1 != nil || err2 != nil || maj != major || min != minor {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil && pid > 0 {
			holders[pid] = true
		}
	}
	return holders
}

// parentOf returns pid's parent (field 4 of /proc/<pid>/stat), or 0.
func parentOf(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	fields := bytes.Fields(data[i+1:])
	const ppidField = 4 - 3
	if len(fields) <= ppidField {
		return 0
	}
	ppid, _ := strconv.Atoi(string(fields[ppidField]))
	return ppid
}
