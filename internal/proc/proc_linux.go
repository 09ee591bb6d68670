package proc

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// StartTime returns the process's start time in clock ticks after boot
// (field 22 of /proc/<pid>/stat; "" if unreadable), which tells a reused pid.
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
// /proc/self/ns/pid), or "" when unreadable. Containers sharing a pool see
// each other's pids as absent or strangers: such a pid says nothing here.
func Namespace() string {
	link, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	// "pid:[4026531836]"
	link = strings.TrimPrefix(link, "pid:[")
	return strings.TrimSuffix(link, "]")
}

// IsAncestor reports whether pid is an ancestor of this process (pid 1 is
// not counted). A pid alone may be reused: the caller compares start times.
func IsAncestor(pid int) bool {
	for p := parentOf(os.Getpid()); p > 1; p = parentOf(p) {
		if p == pid {
			return true
		}
	}
	return false
}
