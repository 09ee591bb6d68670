package throttle

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
)

// The store: the state file in the pool's directory, replaced whole (a
// temporary file renamed over it), so that a reader without the lock sees
// the old state or the new one, never a mix; every change is made under an
// exclusive flock of the lock file, by a caller that read the state afresh
// inside the lock. Nothing in the state names a live process, so a
// process that crashes at any point leaves a valid state (at worst a
// temporary file, which the pool's cleanup removes).
const (
	// FileName is the state file's name in the pool's directory. A pool
	// that never had a report has none.
	FileName = ".throttle"
	// LockName is the lock file's name in the pool's directory. It is
	// made at the first change and never removed: removing a lock file
	// would let two processes lock two different files.
	LockName = ".throttle.lock"
	// TempPrefix begins the name of the temporary file Write renames over
	// the state file. It starts with the pool's newborn prefix (".new-"),
	// whose files the pool's cleanup removes once they are a minute old:
	// the leftover of a writer killed between create and rename.
	TempPrefix = ".new-throttle-"
)

// How long Lock tries the lock. It is held for a few system calls, but a
// process that holds it and stops (SIGSTOP) holds up everyone who needs
// it; so it is tried, never waited on without end.
const (
	// GrantPatience is for a grant, and for a release's raise of the
	// limit: a grant that finds the lock busy looks again soon, and a
	// release must not block (a raise lost is harmless).
	GrantPatience = 50 * time.Millisecond
	// ChangePatience is for a report, a pause and a resume: each is made
	// once, after a failed call, and a report dropped because a holder of
	// the lock was descheduled for 50 ms on a busy machine would leave
	// every other process hammering the provider.
	ChangePatience = 2 * time.Second
)

// ErrBusy is Lock's error when the lock stayed taken for the patience
// given: the caller looks again later, or gives up on the change.
var ErrBusy = errors.New("llmslots: the throttle lock is held by another process")

// Create makes a new regular file at path for the store, failing with an
// error matching fs.ErrExist if path exists. The pool supplies it: the
// files of a group's pool need the pool's group and mode, which only the
// pool knows.
type Create func(path string) (*os.File, error)

// Exists reports whether the pool in dir has a state file, with one
// lstat: whether it parses is for Load to say.
func Exists(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, FileName))
	return err == nil
}

// Load reads the state of the pool in dir, without the lock (a write
// replaces the file whole). It returns nil, nil when there is none, and
// nil and an error saying why when the file is unusable (not a regular
// file, unreadable, or refused by Parse): the caller then goes on as if
// there were none, which is never worse than no reports. A pause that
// ends further away than MaxPause from now is a clock gone wrong or a
// hand-edited file: it is cut to that bound, never stuck.
func Load(dir string) (*State, error) {
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDONLY|filelock.NoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() {
			return nil, notOurs(path, fi)
		}
		return nil, fmt.Errorf("llmslots: cannot read %s: %w; ignored", path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return nil, notOurs(path, fi)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRead))
	if err != nil {
		return nil, fmt.Errorf("llmslots: cannot read %s: %w; ignored", path, err)
	}
	st, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("llmslots: the throttle state %s is not usable (%v); the pool goes on as if no report had been made, until the next report or `llmslots resume` replaces it", path, err)
	}
	if bound := time.Now().Add(MaxPause); st.PauseUntil.After(bound) {
		st.PauseUntil = bound
	}
	return &st, nil
}

// notOurs reports a state file that is not a regular file: llmslots never
// makes one, and reading through a link or from a FIFO is refused.
func notOurs(path string, fi fs.FileInfo) error {
	what := "not a regular file"
	switch t := fi.Mode().Type(); {
	case t&fs.ModeSymlink != 0:
		what = "a symbolic link"
	case t&fs.ModeDir != 0:
		what = "a directory"
	}
	return fmt.Errorf("llmslots: %s is %s, which llmslots never makes; ignored (remove it, or run llmslots resume)", path, what)
}

// Lock takes the exclusive lock of the pool in dir that every change of
// the state, and every grant made while the state restricts grants, is
// made under; create makes the lock file the first time. The lock is
// tried, with a growing pause between tries, until patience has passed:
// then Lock returns ErrBusy. On success the caller must call unlock.
func Lock(dir string, patience time.Duration, create Create) (unlock func(), err error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|filelock.NoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = create(path)
		if errors.Is(err, fs.ErrExist) {
			f, err = os.OpenFile(path, os.O_RDWR|filelock.NoFollow, 0)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("llmslots: cannot open the throttle lock: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("llmslots: %s is not a regular file; remove it", path)
	}
	deadline := time.Now().Add(patience)
	for try := 0; ; try++ {
		ok, err := filelock.TryLock(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		if ok {
			return func() { f.Close() }, nil
		}
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, ErrBusy
		}
		time.Sleep(time.Duration(100<<min(try, 5)) * time.Microsecond)
	}
}

// Write replaces the state file of the pool in dir with st, atomically:
// readers see the old content or the new, never a part. The caller holds
// Lock. On failure the old state stays, and no temporary file is left.
func Write(dir string, st State, create Create) error {
	tmp := filepath.Join(dir, fmt.Sprintf("%s%d-%016x", TempPrefix, os.Getpid(), rand.Uint64()))
	f, err := create(tmp)
	if err != nil {
		return fmt.Errorf("llmslots: cannot write the throttle state: %w", err)
	}
	_, err = f.Write(Marshal(st))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, FileName))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("llmslots: cannot write the throttle state: %w", err)
	}
	return nil
}

// Update changes the state of the pool in dir under the lock: change is
// given the state read afresh inside it (nil: none, or an unusable one),
// and what it returns is written if it says so. unusable is the error of
// a state file that could not be used, and is replaced if change writes;
// err is the failure to lock or to write.
func Update(dir string, patience time.Duration, create Create, change func(st *State) (State, bool)) (unusable, err error) {
	unlock, err := Lock(dir, patience, create)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, unusable := Load(dir)
	if next, ok := change(st); ok {
		err = Write(dir, next, create)
	}
	return unusable, err
}

// Remove removes the state of the pool in dir, under the lock: the pool
// then behaves as if no report had ever been made. The lock file stays.
// Removing a state that does not exist is not an error.
func Remove(dir string, patience time.Duration, create Create) error {
	unlock, err := Lock(dir, patience, create)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(filepath.Join(dir, FileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("llmslots: %w", err)
	}
	return nil
}
