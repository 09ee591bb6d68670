// Package perm decides whether a directory can be trusted with slot files
// and gives the files of a group-shared pool their group. Its errors are
// *UnsafeError; the protocol above wraps them.
package perm

// An UnsafeError reports a directory that cannot be trusted with slot
// files, and the fix where there is one.
type UnsafeError struct{ Msg string }

func (e *UnsafeError) Error() string { return e.Msg }
