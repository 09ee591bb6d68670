package cli

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
)

// PrintFlags lists fs's flags as flag.PrintDefaults does, but written
// --flag, as the synopses and the descriptions write them.
func PrintFlags(fs *flag.FlagSet, w io.Writer) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
	})
}

// IsSet reports whether the flag name was given on the command line.
func IsSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// Detectors are the CLIs whose messages llmslots.DetectLimit knows.
var Detectors = []string{"codex", "claude"}

// Detecting says whether run --detect list watches the command called
// name, or what is wrong with list: auto picks by name, none is off.
func Detecting(list, name string) (bool, string) {
	switch list = strings.ToLower(list); list {
	case "none":
		return false, ""
	case "auto":
		name = strings.TrimSuffix(strings.ToLower(filepath.Base(name)), ".exe")
		return slices.Contains(Detectors, name), ""
	}
	for _, d := range strings.Split(list, ",") {
		if !slices.Contains(Detectors, d) {
			return false, fmt.Sprintf("--detect %q: %q is none of %s, auto, none", list, d, strings.Join(Detectors, ", "))
		}
	}
	return true, ""
}
