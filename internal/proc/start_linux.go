package proc

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// StartTime returns the process's start time in clock ticks after boot
// (field 22 of /proc/<pid>/stat), or "" when it cannot be read. With the pid
// it names one process: a reused pid has a different start time.
func StartTime(pid int) string {
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
	const startField = 22 - 3
	if len(fields) <= startField {
		return ""
	}
	return string(fields[startField])
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

// Stopped reports whether process pid is stopped (by SIGSTOP, Ctrl-Z, or
// under a tracer): field 3 of /proc/<pid>/stat is T or t. False when it
// cannot be read. Three bare system calls: releasers ask it at every
// handoff (see llmslots's serve.go).
func Stopped(pid int) bool {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	var buf [512]byte
	n, err := unix.Read(fd, buf[:])
	unix.Close(fd)
	if err != nil || n <= 0 {
		return false
	}
	// The command name in parentheses may hold spaces and ')'.
	i := bytes.LastIndexByte(buf[:n], ')')
	if i < 0 || i+2 >= n {
		return false
	}
	state := buf[i+2]
	return state == 'T' || state == 't'
}
