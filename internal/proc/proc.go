// Package proc answers what the slot protocol needs to know of a process
// it has only a pid for: whether it is alive, when it started (which tells
// a reused pid), which pid namespace this process is in (a pid from
// another one names a different process, or none), and whether an
// ancestor holds a file's lock.
package proc
