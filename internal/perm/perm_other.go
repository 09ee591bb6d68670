//go:build !unix

package perm

import "io/fs"

// GroupsSupported is false: there are no Unix groups here.
const GroupsSupported = false

// Share does nothing here.
func Share(path string, gid int, mode fs.FileMode) error { return nil }

// CheckDir accepts every directory: the platform's permissions are not
// the Unix ones this package knows how to judge.
func CheckDir(dir string, fi fs.FileInfo, gid int) error { return nil }

// CheckParents accepts every path here (see CheckDir).
func CheckParents(dir string, gid int) error { return nil }
