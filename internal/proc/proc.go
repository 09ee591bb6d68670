// Package proc answers what the slot protocol needs to know of a process
// it has only a pid for: whether it is alive, when it started (which tells
// a reused pid), this process's pid namespace (a pid from another names
// another process, or none), and whether it is an ancestor.
package proc
