// Package fdpass passes an open, locked file to another process: to a child
// (exec.Cmd's ExtraFiles), across exec (clearing close-on-exec), and back
// from a descriptor a process was started with, checked to be that file.
package fdpass
