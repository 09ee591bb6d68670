// Package fdpass passes an open, locked file to another process: to a
// child (as one of exec.Cmd's ExtraFiles), across exec (by clearing
// close-on-exec), and back from a descriptor a process was started with,
// checked to be the locked file it claims to be.
package fdpass
