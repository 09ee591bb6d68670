//go:build unix

package main

import (
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// owner names the user that owns the file: "bin (uid 2)", or "uid 2"
// when the uid has no name here.
func owner(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "an unknown user"
	}
	uid := strconv.FormatUint(uint64(st.Uid), 10)
	if u, err := user.LookupId(uid); err == nil && u.Username != "" {
		return u.Username + " (uid " + uid + ")"
	}
	return "uid " + uid
}
