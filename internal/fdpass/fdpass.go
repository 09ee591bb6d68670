// Package fdpass passes an open, locked file to another process: to a
// child (as one of exec.Cmd's ExtraFiles), across exec (by clearing
// close-on-exec), and back from a descriptor a process was started with,
// checked to be the locked file it claims to be.
package fdpass

import "errors"

// ErrNotTheFile reports an inherited descriptor that is not the locked
// file at the path it was said to hold.
var ErrNotTheFile = errors.New("the descriptor is not the locked slot file")
