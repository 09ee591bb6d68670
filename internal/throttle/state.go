// Package throttle is a pool's shared throttle state: its file and store
// (this file) and its policy (policy.go); the protocol above counts holders.
package throttle

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/slotfile"
	"github.com/llmslots/llmslots/internal/textsafe"
)

const (
	// Magic is a state file's first line. Readers skip keys they do not
	// know; a change an old reader would misread changes the version.
	Magic = "llmslots-throttle 1"
	// MaxLimit bounds a state's limit: llmslots.MaxSlots, checked there.
	MaxLimit = 1024
	maxRead  = 4096 // a valid file is a few hundred bytes: read no more
	maxField = 256  // bounds each free-text field of a report
)

// State is the state file's content, shared by every process of the
// pool. Times are wall-clock; a zero time is written as 0, "never".
type State struct {
	Limit      float64       // its integer part counts; releases add fractions
	WMax       int           // the level the last decrease was made from
	Ceiling    int           // the largest max reported with: the slots counted
	Decreased  time.Time     // when the limit was last lowered
	Raised     time.Time     // when a release last raised it (or it was lowered)
	PauseUntil time.Time     // no grant before it
	Spacing    time.Duration // how far apart grants come after the pause
	LastGrant  time.Time     // the last grant made in that ramp
	Backoff    int           // reports without a hint since the last success
	Last       Record        // the last report; At is zero if none
}

// Record is a report as the file keeps it (llmslots.ThrottleReport).
type Record struct {
	At      time.Time
	PID     int
	Host    string
	Hint    time.Duration // the provider's retry-after; 0: none
	Kind    string        // "throttled", "usage" or "pause"
	Reason  string
	Command string
	Label   string
}

// bounds are the ranges of the numbers the policy relies on.
var bounds = map[string][2]float64{"limit": {1, MaxLimit}, "ceiling": {0, MaxLimit}, "spacing": {0, float64(maxSpacing)}, "backoff": {0, maxBackoff}}

// Marshal returns the state file's content for st. Free text is made to
// fit on its line, so that no field can forge another.
func Marshal(st State) []byte {
	b := fmt.Appendf(nil, "%s\nlimit=%.4f\nwmax=%d\nceiling=%d\ndecreased=%d\nraised=%d\npause_until=%d\nspacing=%s\nlast_grant=%d\nbackoff=%d\n",
		Magic, st.Limit, st.WMax, st.Ceiling, unixNano(st.Decreased), unixNano(st.Raised), unixNano(st.PauseUntil), st.Spacing, unixNano(st.LastGrant), st.Backoff)
	if r := st.Last; !r.At.IsZero() {
		b = fmt.Appendf(b, "report_at=%d\nreport_pid=%d\nreport_host=%s\nreport_hint=%s\nreport_kind=%s\nreport_reason=%s\nreport_command=%s\nreport_label=%s\n",
			r.At.UnixNano(), r.PID, oneLine(r.Host, maxField), r.Hint, oneLine(r.Kind, 16), oneLine(r.Reason, maxField),
			oneLine(r.Command, maxField), oneLine(r.Label, maxField))
	}
	return b
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Parse reads a state file's content, strict about what it knows and
// skipping the rest (a later version's keys); the error says what is wrong.
func Parse(data []byte) (State, error) {
	if len(data) >= maxRead {
		return State{}, fmt.Errorf("larger than %d bytes", maxRead)
	}
	first, rest, _ := strings.Cut(string(data), "\n")
	if first != Magic {
		return State{}, fmt.Errorf("does not start with %q", Magic)
	}
	var st State
	r := &st.Last
	fields := map[string]any{"limit": &st.Limit, "wmax": &st.WMax, "ceiling": &st.Ceiling, "decreased": &st.Decreased, "raised": &st.Raised,
		"pause_until": &st.PauseUntil, "spacing": &st.Spacing, "last_grant": &st.LastGrant,
		"backoff": &st.Backoff, "report_at": &r.At, "report_pid": &r.PID, "report_host": &r.Host,
		"report_hint": &r.Hint, "report_kind": &r.Kind, "report_reason": &r.Reason,
		"report_command": &r.Command, "report_label": &r.Label}
	seenLimit := false
	for _, line := range strings.Split(rest, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if line != "" && !ok {
			return State{}, fmt.Errorf("line %q is not key=value", oneLine(line, 64))
		}
		if p, known := fields[k]; known {
			seenLimit = seenLimit || k == "limit"
			if err := set(k, p, v); err != nil {
				return State{}, fmt.Errorf("bad %s=%q: %v", k, oneLine(v, 64), err)
			}
		}
	}
	if !seenLimit {
		return State{}, errors.New("no limit= line")
	}
	return st, nil
}

// set parses v into p, a pointer to a State field; a time <= 0 is zero.
func set(key string, p any, v string) (err error) {
	var x float64
	switch p := p.(type) {
	case *float64:
		*p, err = strconv.ParseFloat(v, 64)
		x = *p
	case *int:
		*p, err = strconv.Atoi(v)
		x = float64(*p)
	case *time.Time:
		var n int64
		n, err = strconv.ParseInt(v, 10, 64)
		*p = time.Time{}
		if n > 0 {
			*p = time.Unix(0, n)
		}
	case *time.Duration:
		*p, err = time.ParseDuration(v)
		x = float64(*p)
	case *string:
		*p = v
	}
	if b, ok := bounds[key]; ok && err == nil && !(x >= b[0] && x <= b[1]) { // NaN too
		return errors.New("out of range")
	}
	return err
}

// oneLine makes s fit in n bytes of one line.
func oneLine(s string, n int) string {
	if s = strings.TrimSpace(textsafe.Clean(s)); len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") // drops a rune cut in two
	}
	return s
}

// The store: the state file is replaced whole, so a reader without the
// lock sees the old state or the new; changes are made under the lock.
const (
	// FileName is the state file's name in the pool's directory.
	FileName = ".throttle"
	// LockName is the lock file's, never removed: that would let two
	// processes lock two different files.
	LockName = ".throttle.lock"
	// TempPrefix begins Write's temporary files' names: the pool's newborn
	// prefix, whose leftovers the pool's cleanup removes.
	TempPrefix = ".new-throttle-"
	// GrantPatience and ChangePatience are how long Lock tries, so that a
	// stopped holder holds up nobody for long. A grant looks again soon and
	// a lost raise is harmless; a lost report leaves all hammering the provider.
	GrantPatience  = 50 * time.Millisecond // a grant, a raise
	ChangePatience = 2 * time.Second       // a report, a pause, a resume
)

// ErrBusy is Lock's error when the lock stayed taken for the patience.
var ErrBusy = errors.New("llmslots: the throttle lock is held by another process")

// Create makes a new regular file at path, failing with an error matching
// fs.ErrExist if it exists: the pool's mode and group.
type Create func(path string) (*os.File, error)

// Load reads the state of the pool in dir without the lock: nil, nil if
// none; nil and why if the file is unusable, which the caller treats as
// none. A pause beyond MaxPause (a clock gone wrong) is cut to it.
func Load(dir string) (*State, error) {
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDONLY|filelock.NoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	fi, _ := os.Lstat(path) // if NoFollow refused a link
	if err == nil {
		defer f.Close()
		fi, _ = f.Stat()
	}
	var st State
	if fi != nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s, which llmslots never makes", slotfile.Describe(fi))
	} else if err == nil {
		var data []byte
		if data, err = io.ReadAll(io.LimitReader(f, maxRead)); err == nil {
			st, err = Parse(data)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("llmslots: the throttle state %s is not usable (%w), so ignored: remove it, or run `llmslots resume`", path, err)
	}
	written := time.Now()
	if fi != nil {
		written = fi.ModTime()
	}
	if written.After(time.Now().Add(time.Minute)) {
		written = time.Now().Add(-MaxPause) // a file from the future (a clock gone back) pauses no more
	}
	if bound := written.Add(MaxPause); st.PauseUntil.After(bound) {
		st.PauseUntil = bound
	}
	return &st, nil
}

// Lock takes the pool's lock, for a change or a restricted grant, trying
// for patience before ErrBusy. On success the caller must call unlock.
func Lock(dir string, patience time.Duration, create Create) (unlock func(), err error) {
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|filelock.NoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if f, err = create(path); errors.Is(err, fs.ErrExist) {
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
		if ok {
			return func() { f.Close() }, nil
		}
		if err == nil && !time.Now().Before(deadline) {
			err = ErrBusy
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		time.Sleep(time.Duration(100<<min(try, 5)) * time.Microsecond)
	}
}

// Write replaces the pool's state with st, atomically, under Lock. On
// failure the old state stays, and no temporary file.
func Write(dir string, st State, create Create) error {
	tmp := filepath.Join(dir, fmt.Sprintf("%s%d-%016x", TempPrefix, os.Getpid(), rand.Uint64()))
	f, err := create(tmp)
	if err != nil {
		return fmt.Errorf("llmslots: cannot write the throttle state: %w", err)
	}
	_, err = f.Write(Marshal(st))
	if err = errors.Join(err, f.Close()); err == nil {
		err = os.Rename(tmp, filepath.Join(dir, FileName))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("llmslots: cannot write the throttle state: %w", err)
	}
	return nil
}

// Update changes the pool's state under the lock: change gets the state
// read inside it, and what it returns is written if it says so. unusable
// is why the file was not usable; err, a failure to lock or to write.
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

// Remove removes the pool's state under the lock, as if no report had
// been made; the lock file stays. No state is no error.
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
