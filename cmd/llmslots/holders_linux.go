package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockHolders returns the pids of the processes that hold the lock of the
// slot file at path: those with a descriptor open on that file (the same
// inode, whatever name it was opened by) whose
// fdinfo lists a lock, which Linux shows only for the open file that owns it. A process
// that merely has the file open (a status probe, an acquirer trying the
// lock) is not listed. After `llmslots run` is killed, this finds the
// command it handed the slot to.
func lockHolders(path string) []int {
	slot, err := os.Lstat(path)
	if err != nil {
		return nil
	}
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
		if holdsLock(pid, slot) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func holdsLock(pid int, slot os.FileInfo) bool {
	base := filepath.Join("/proc", strconv.Itoa(pid))
	fds, err := os.ReadDir(filepath.Join(base, "fd"))
	if err != nil {
		return false // gone, or another user's
	}
	for _, fd := range fds {
		// Stat follows the descriptor's link to the open file itself.
		fi, err := os.Stat(filepath.Join(base, "fd", fd.Name()))
		if err != nil || !os.SameFile(fi, slot) {
			continue
		}
		info, err := os.ReadFile(filepath.Join(base, "fdinfo", fd.Name()))
		if err == nil && strings.Contains(string(info), "\nlock:") {
			return true
		}
	}
	return false
}
