package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockHolders returns the pids of the processes that hold the lock of the
// slot file at path: those with a descriptor open on it whose fdinfo lists
// a lock, which Linux shows only for the open file that owns it. A process
// that merely has the file open (a status probe, an acquirer trying the
// lock) is not listed. After `llmslots run` is killed, this finds the
// command it handed the slot to.
func lockHolders(path string) []int {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if holdsLock(pid, path) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func holdsLock(pid int, path string) bool {
	base := filepath.Join("/proc", strconv.Itoa(pid))
	fds, err := os.ReadDir(filepath.Join(base, "fd"))
	if err != nil {
		return false // gone, or another user's
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(base, "fd", fd.Name()))
		if err != nil || target != path {
			continue
		}
		info, err := os.ReadFile(filepath.Join(base, "fdinfo", fd.Name()))
		if err == nil && strings.Contains(string(info), "\nlock:") {
			return true
		}
	}
	return false
}
