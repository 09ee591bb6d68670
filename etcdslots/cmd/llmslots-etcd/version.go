package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// printVersion writes "llmslots-etcd VERSION" from the build info, as the
// core command's version does: the module's version for a `go install
// ...@v1.2.3`, "(devel)" for a build in a checkout, followed by the
// commit and whether the tree was modified when the build recorded them
// (go build in a git checkout does), and the Go version.
func printVersion(w io.Writer) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(w, name+" (unknown version: built without module support)")
		return
	}
	line := name + " " + bi.Main.Version
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			line += ", commit " + s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			line += ", modified"
		}
	}
	fmt.Fprintf(w, "%s, %s\n", line, bi.GoVersion)
}
