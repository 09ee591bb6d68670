package llmslots

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/llmslots/llmslots/internal/slotfile"
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
const MaxSlots = slotfile.MaxSlots

// Dir returns the default pool's directory: $LLMSLOTS_DIR if set and
// non-empty; else $XDG_RUNTIME_DIR/llmslots when XDG_RUNTIME_DIR is an
// absolute path; else os.UserCacheDir()/llmslots, computed on each call.
// It does not create or check the directory; when none can be derived (no
// HOME) or LLMSLOTS_DIR is not absolute, it still returns its best answer
// and the operations on the pool report the error.
func Dir() string {
	dir, _ := defaultDir()
	return dir
}

// SlotPath returns the path of slot id's file in the default pool. It does
// not check id; the operations that take a slot id do.
func SlotPath(id int) string {
	return slotfile.SlotPath(Dir(), id)
}

// defaultDir resolves the default pool's directory and reports why it
// cannot be used. The explicit variable comes first: the reference let
// XDG_RUNTIME_DIR win, so tests that set its override deleted real slots.
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

// checkPoolName enforces the pool name alphabet. A leading dot is refused so
// that "." and ".." cannot escape the root, and slot file names are refused
// so that a pool directory never sits where the default pool's slot would.
func checkPoolName(name string) error {
	if len(name) < 1 || len(name) > 64 {
		return invalidf("pool name must be 1-64 characters, got %d in %q", len(name), name)
	}
	if strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") != "" {
		return invalidf("pool name may hold only [a-z0-9._-], got %q", name)
	}
	if name[0] == '.' {
		return invalidf("pool name must not start with a dot, got %q", name)
	}
	if slotfile.ParseSlotName(name) >= 0 {
		return invalidf("pool name %q is a slot file name; choose another", name)
	}
	return nil
}

// defaultPools keeps one Pool per default directory, so the package-level
// functions check a directory once, yet follow LLMSLOTS_DIR when it changes.
var defaultPools = struct {
	sync.Mutex
	byDir map[string]*Pool
}{byDir: map[string]*Pool{}}

func defaultPool() (*Pool, error) {
	dir, err := defaultDir()
	if err != nil {
		return nil, err
	}
	defaultPools.Lock()
	defer defaultPools.Unlock()
	if p := defaultPools.byDir[dir]; p != nil {
		return p, nil
	}
	p, err := NewPool(dir)
	if err == nil {
		defaultPools.byDir[dir] = p
	}
	return p, err
}

// The package-level functions: the default pool's operations.

// onDefault runs op on the default pool.
func onDefault[T any](op func(p *Pool) (T, error)) (T, error) {
	p, err := defaultPool()
	if err != nil {
		var zero T
		return zero, err
	}
	return op(p)
}

// Acquire takes a slot of the default pool; see Pool.Acquire.
func Acquire(max int, wait time.Duration) (*Guard, error) {
	return onDefault(func(p *Pool) (*Guard, error) { return p.Acquire(max, wait) })
}

// AcquireContext takes a slot of the default pool; see Pool.AcquireContext.
func AcquireContext(ctx context.Context, max int) (*Guard, error) {
	return onDefault(func(p *Pool) (*Guard, error) { return p.AcquireContext(ctx, max) })
}

// ReadStatus reports the default pool's slots; see Pool.ReadStatus.
func ReadStatus(max int) (Status, error) {
	return onDefault(func(p *Pool) (Status, error) { return p.ReadStatus(max) })
}

// FindStale lists the default pool's stale slots; see Pool.FindStale.
func FindStale(max int) ([]int, error) {
	return onDefault(func(p *Pool) ([]int, error) { return p.FindStale(max) })
}

// ForceRelease frees a stale slot of the default pool; see Pool.ForceRelease.
func ForceRelease(slotID int) error {
	_, err := onDefault(func(p *Pool) (any, error) { return nil, p.ForceRelease(slotID) })
	return err
}
