//go:build unix

package llmslots

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

func checkDirOwner(dir string, fi fs.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := os.Geteuid(); int(st.Uid) != uid {
			return &wrapped{
				msg:      fmt.Sprintf("llmslots: slot directory %s belongs to uid %d, not to you (uid %d); set %s to a directory of your own", dir, st.Uid, uid, EnvDir),
				sentinel: ErrUnsafeDir,
			}
		}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return &wrapped{
			msg:      fmt.Sprintf("llmslots: slot directory %s is writable by group or others (mode %04o); run: chmod go-w %s", dir, perm, dir),
			sentinel: ErrUnsafeDir,
		}
	}
	return nil
}
