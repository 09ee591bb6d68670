//go:build linux || darwin || freebsd

package main

import "golang.org/x/sys/unix"

// roomIn is how many bytes the file system of dir has free for this user;
// false if that cannot be told.
func roomIn(dir string) (int64, bool) {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
