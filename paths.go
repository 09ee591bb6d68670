package llmslots

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/llmslots/llmslots/internal/perm"
)

// Environment variables the package reads.
const (
	// EnvDir names the default pool's directory. When set and non-empty it
	// wins over XDG_RUNTIME_DIR, so tests and sandboxes never touch the
	// user's real slots. It must be an absolute path.
	EnvDir = "LLMSLOTS_DIR"
	// EnvMax overrides DefaultMaxConcurrency with an integer 1..MaxSlots.
	EnvMax = "LLMSLOTS_MAX"
)

// MaxSlots is the largest max any pool accepts.
const MaxSlots = 1024

// Dir returns the default pool's directory: $LLMSLOTS_DIR if set and
// non-empty; else $XDG_RUNTIME_DIR/llmslots when XDG_RUNTIME_DIR is an
// absolute path; else os.UserCacheDir()/llmslots. It is computed on each
// call, so a change to the environment takes effect at once. Dir does not
// create or check the directory; when no directory can be derived (no HOME)
// or LLMSLOTS_DIR is not absolute, it still returns its best answer and the
// operations on the pool report the error.
func Dir() string {
	dir, _ := defaultDir()
	return dir
}

// SlotPath returns the path of slot id's file in the default pool. It does
// not check id; the operations that take a slot id do.
func SlotPath(id int) string {
	return slotPath(Dir(), id)
}

// defaultDir resolves the default pool's directory and reports why it
// cannot be used. The explicit variable comes first: the reference let
// XDG_RUNTIME_DIR win over its override, so tests that set the override
// still deleted real slot files.
func defaultDir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		if !filepath.IsAbs(d) {
			return d, &EnvError{Var: EnvDir, Value: d, Reason: "is not an absolute path; set it to one"}
		}
		return filepath.Clean(d), nil
	}
	// The XDG spec requires an absolute XDG_RUNTIME_DIR; a relative one
	// would put slots wherever the process happens to run, so it is skipped.
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "llmslots"), nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("llmslots: cannot choose a slot directory (%v); set %s to an absolute path", err, EnvDir)
	}
	return filepath.Join(cache, "llmslots"), nil
}

// sparePrefix starts every spare's name; a dot hides it from ls, and no
// pool name may start with one (checkPoolName), so no named pool's
// directory can clash.
const sparePrefix = ".spare-"

// pidInName reads the pid of its maker from a ticket's or draft's name
// (t-<arrived>-<pid>-<seq>) or a spare's (.spare-<pid>-<random>); 0 if
// there is none.
func pidInName(name string) int {
	var field string
	switch {
	case strings.HasPrefix(name, sparePrefix):
		field, _, _ = strings.Cut(name[len(sparePrefix):], "-")
	case strings.HasPrefix(name, ticketPrefix), strings.HasPrefix(name, draftPrefix):
		parts := strings.Split(name, "-")
		if len(parts) != 4 {
			return 0
		}
		field = parts[2]
	}
	pid, err := strconv.Atoi(field)
	if err != nil || pid < 0 {
		return 0
	}
	return pid
}

// slotName and parseSlotName define the one file name a slot has.
func slotName(id int) string {
	return "slot-" + strconv.Itoa(id) + ".lock"
}

// parseSlotName returns the id of a canonical slot file name, or -1. Names
// like "slot-01.lock" are not slots: no process would ever take them.
func parseSlotName(name string) int {
	s, ok := strings.CutPrefix(name, "slot-")
	if !ok {
		return -1
	}
	s, ok = strings.CutSuffix(s, ".lock")
	if !ok {
		return -1
	}
	id, err := strconv.Atoi(s)
	if err != nil || id < 0 || id >= MaxSlots || strconv.Itoa(id) != s {
		return -1
	}
	return id
}

func slotPath(dir string, id int) string {
	return filepath.Join(dir, slotName(id))
}

// checkPoolName enforces the pool name alphabet. A leading dot is refused so
// that "." and ".." cannot escape the root, and slot file names are refused
// so that a pool directory never sits where the default pool's slot would.
func checkPoolName(name string) error {
	if len(name) < 1 || len(name) > 64 {
		return invalidf("pool name must be 1-64 characters, got %d in %q", len(name), name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return invalidf("pool name may hold only [a-z0-9._-], got %q", name)
		}
	}
	if name[0] == '.' {
		return invalidf("pool name must not start with a dot, got %q", name)
	}
	if parseSlotName(name) >= 0 {
		return invalidf("pool name %q is a slot file name; choose another", name)
	}
	return nil
}

// prepareDir creates dir if it is missing and checks that it can be
// trusted with slot files. A private directory is created 0700, with its
// parents; a group's (see WithGroup) 2770 with that group, and its parent
// must exist already: the group has to be able to reach it, which only
// whoever sets up the shared place can arrange.
func prepareDir(dir string, g group) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := makeDir(dir, g); err != nil {
			return fmt.Errorf("llmslots: cannot create slot directory: %w", err)
		}
		fi, err = os.Stat(dir)
	}
	if err != nil {
		return fmt.Errorf("llmslots: slot directory: %w", err)
	}
	return checkDir(dir, fi, g)
}

// makeDir creates a pool's directory (or its queue directory) as g wants.
// A group's is built complete under a hidden name beside it (see
// makeGroupDir), so members that make it at the same instant never see
// each other's half-made one.
func makeDir(dir string, g group) error {
	if !g.shared {
		return os.MkdirAll(dir, 0o700)
	}
	return makeGroupDir(dir, g.gid, true)
}

// inspectDir checks an existing dir without creating anything; exists is
// false when there is no directory (and so no slot is held).
func inspectDir(dir string, g group) (exists bool, err error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("llmslots: slot directory: %w", err)
	}
	return true, checkDir(dir, fi, g)
}

// checkDir refuses directories that would let someone else forge, delete or
// swap slot files: another user's, or one that group or others may write.
func checkDir(dir string, fi fs.FileInfo, g group) error {
	if !fi.IsDir() {
		return &wrapped{
			msg:      fmt.Sprintf("llmslots: slot directory %s is not a directory; remove it or set %s to a directory of your own", dir, EnvDir),
			sentinel: ErrUnsafeDir,
		}
	}
	gid := -1
	if g.shared {
		gid = g.gid
	}
	if err := perm.CheckDir(dir, fi, gid); err != nil {
		return &wrapped{msg: "llmslots: " + err.Error(), sentinel: ErrUnsafeDir}
	}
	if err := perm.CheckParents(dir, gid); err != nil {
		return &wrapped{msg: "llmslots: " + err.Error(), sentinel: ErrUnsafeDir}
	}
	return nil
}
