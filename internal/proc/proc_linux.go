package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// StartTime returns the process's start time in clock ticks after boot
// (field 22 of /proc/<pid>/stat), or "" when it cannot be read. With the pid
// it names one process: a reused pid has a different start time.
func StartTime(pid int) string { return statField(pid, 22) }

// parentOf returns pid's parent (field 4 of /proc/<pid>/stat), or 0.
func parentOf(pid int) int {
	ppid, _ := strconv.Atoi(statField(pid, 4))
	return ppid
}

// statField returns field n (counted from 1) of /proc/<pid>/stat, or "".
func statField(pid, n int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name in parentheses may hold spaces and ')'; the fields
	// after the last ')' start at field 3 (state).
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return ""
	}
	fields := bytes.Fields(data[i+1:])
	if n < 3 || len(fields) <= n-3 {
		return ""
	}
	return string(fields[n-3])
}

// Namespace names this process's pid namespace (the inode number in
// /proc/self/ns/pid), or "" when it cannot be read. Processes in containers
// that share a bind-mounted pool see each other's pids as absent or as
// strangers: a pid from another namespace says nothing here.
func Namespace() string {
	link, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	// "pid:[4026531836]"
	link = strings.TrimPrefix(link, "pid:[")
	return strings.TrimSuffix(link, "]")
}

// HeldByAncestor reports whether the file at path is flock-locked by an
// ancestor of this process, as /proc/locks tells: a process that lost the
// descriptor its parent handed it (a Python layer or a sandbox closed it)
// must not wait for the slot, since it would be waiting on itself.
// /proc/locks and the parent chain both use this pid namespace's pids, so
// a holder in another namespace is never taken for an ancestor.
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
	for pid := parentOf(os.Getpid()); pid > 1 && len(holders) > 0; pid = parentOf(pid) {
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
// with the device as the kernel prints it ("%02x:%02x:%lu"); a blocked
// request has "->" after the ordinal and holds nothing.
func flockHolders(dev, ino uint64) map[int]bool {
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return nil
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(dev), unix.Minor(dev), ino)
	holders := map[int]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil && pid > 0 {
			holders[pid] = true
		}
	}
	return holders
}
