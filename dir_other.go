//go:build !unix

package llmslots

import "io/fs"

// checkDirOwner accepts any directory: on Windows access is governed by
// ACLs, which the per-user default locations already restrict.
func checkDirOwner(dir string, fi fs.FileInfo, g group) error { return nil }
