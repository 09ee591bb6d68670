//go:build !unix

package llmslots

import "io/fs"

const groupsSupported = false

func shareWithGroup(path string, g group, mode fs.FileMode) error { return nil }

func ownedByMe(fi fs.FileInfo) bool { return true }
