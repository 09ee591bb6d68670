package llmslots

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/llmslots/llmslots/internal/slotfile"
	"github.com/llmslots/llmslots/internal/textsafe"
	"github.com/llmslots/llmslots/internal/throttle"
)

// ErrBusy is matched (errors.Is) by the error Acquire returns when no slot
// became free within the wait: a *BusyError, which names max, the wait,
// the holders and any slot that cannot be used.
var ErrBusy = errors.New("llmslots: all slots busy")

// ErrInvalid is matched (errors.Is) by every error that reports a bad
// argument, environment value or option. The message names the argument, the
// value given and what is allowed.
var ErrInvalid = errors.New("llmslots: invalid argument")

// ErrHeld is matched (errors.Is) by the error ForceRelease returns for a slot
// whose lock is held by a live process. Deleting such a file would let a
// second process take the slot while the first still runs.
var ErrHeld = errors.New("llmslots: slot is held")

// ErrUnsafeDir is matched (errors.Is) by the error returned when the slot
// directory cannot be trusted: it is not a directory, it belongs to another
// user, or others may write to it (and so could plant or delete slot files).
var ErrUnsafeDir = slotfile.ErrUnsafeDir

// An EnvError reports an environment variable whose value cannot be used.
// It matches ErrInvalid; callers that tell the user's settings from a bad
// argument (the command line does) can look for it with errors.As.
type EnvError struct {
	Var, Value string
	Reason     string // what is wrong, as the end of a sentence
}

func (e *EnvError) Error() string {
	return fmt.Sprintf("llmslots: %s=%q %s", e.Var, e.Value, e.Reason)
}

// Is makes an EnvError match ErrInvalid.
func (e *EnvError) Is(target error) bool { return target == ErrInvalid }

// A BusyError reports that no slot became free within the wait. It
// matches ErrBusy. The holders are as their records said when Acquire gave
// up; a holder whose record could not be read is left out.
type BusyError struct {
	Dir     string        // the pool's directory
	Max     int           // the max the caller asked with
	Wait    time.Duration // how long the caller waited
	Holders []Holder      // the slots' recorded holders, by slot
	// Unusable lists slot paths that hold what no llmslots process makes
	// (a planted symlink, a FIFO): nobody can take them until removed.
	Unusable []UnusableSlot
	Err      error // the context's error, if one ended the wait (AcquireContext)
	// Throttle is the pool's throttling when the wait ended (a pause keeps
	// slots free); nil if the pool has no throttle state.
	Throttle *ThrottleStatus
}

// A Holder is one slot's recorded holder.
type Holder struct {
	SlotID  int
	PID     int
	Host    string
	Label   string
	Command string
	Self    bool // the calling process itself: waiting for it could never end
}

// An UnusableSlot is a slot path that holds what no llmslots process makes.
type UnusableSlot struct {
	SlotID int
	Path   string
	What   string // what is there: "a symbolic link", "a named pipe", ...
}

func (e *BusyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "llmslots: no free slot in %s within %v (max=%d)", e.Dir, e.Wait, e.Max)
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	paused := e.Throttle != nil && !e.Throttle.PausedUntil.IsZero()
	if paused {
		until, r := e.Throttle.PausedUntil.Format(time.DateTime), e.Throttle.LastReport
		switch {
		case r != nil && r.Kind == "usage":
			fmt.Fprintf(&b, "; the pool waits until %s for a usage limit to reset (reported by pid %d: %s)", until, r.PID, shorten(cmp.Or(r.Reason, "no message"), 160))
		case r != nil && r.Kind == "pause":
			fmt.Fprintf(&b, "; the pool is paused until %s (paused by hand by pid %d: %s)", until, r.PID, cmp.Or(r.Reason, "no reason given"))
		case r != nil:
			fmt.Fprintf(&b, "; the pool is paused until %s (a provider's throttling reported by pid %d)", until, r.PID)
		default:
			fmt.Fprintf(&b, "; the pool is paused until %s", until)
		}
	} else if e.Throttle != nil && e.Throttle.Limit < e.Max {
		fmt.Fprintf(&b, "; throttled to %d at once", e.Throttle.Limit)
	}
	if len(e.Holders) == 0 && !paused {
		b.WriteString("; held by pids unknown")
	}
	sep := "; held by "
	for _, h := range e.Holders {
		b.WriteString(sep + "pid " + strconv.Itoa(h.PID))
		sep = ", "
		switch what := cmp.Or(h.Label, h.Command); {
		case h.Self && what != "":
			fmt.Fprintf(&b, " (this process: %s)", shorten(what, 60))
		case h.Self:
			b.WriteString(" (this process)")
		case what != "":
			fmt.Fprintf(&b, " (%s)", shorten(what, 60))
		}
	}
	for _, u := range e.Unusable {
		fmt.Fprintf(&b, "; slot file %s is %s, which llmslots never makes: remove it", u.Path, u.What)
	}
	return b.String()
}

// Is makes a BusyError match ErrBusy.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Unwrap returns the context's error, if a context ended the wait, so
// that errors.Is(err, context.DeadlineExceeded) holds.
func (e *BusyError) Unwrap() error { return e.Err }

// shorten cuts s to at most n runes, marking the cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// invalidf returns an error matching ErrInvalid that reads as its message.
func invalidf(format string, args ...any) error {
	return &wrapped{msg: "llmslots: " + fmt.Sprintf(format, args...), sentinel: ErrInvalid}
}

// wrapped carries its own message but matches a sentinel, so messages stay
// one clear sentence instead of "sentinel: detail: detail".
type wrapped struct {
	msg      string
	sentinel error
}

func (e *wrapped) Error() string        { return e.msg }
func (e *wrapped) Is(target error) bool { return target == e.sentinel }

// checkMax validates a pool size.
func checkMax(max int) error {
	if max < 1 || max > MaxSlots {
		return invalidf("max must be 1..%d, got %d", MaxSlots, max)
	}
	return nil
}

// checkSlotID validates a slot id.
func checkSlotID(id int) error {
	if id < 0 || id >= MaxSlots {
		return invalidf("slot id must be 0..%d, got %d", MaxSlots-1, id)
	}
	return nil
}

// checkLabel validates a label given by the caller; unlike the command line,
// which is cleaned silently, a bad label is the caller's to fix.
func checkLabel(label string) error {
	if len(label) > slotfile.MaxLabelLen {
		return invalidf("label must be at most %d bytes, got %d", slotfile.MaxLabelLen, len(label))
	}
	if !utf8.ValidString(label) || strings.ContainsFunc(label, textsafe.IsControl) {
		return invalidf("label must be UTF-8 text without control characters, got %q", label)
	}
	return nil
}

// log is the pool's logger: its own (WithLogger), or the package's.
func (p *Pool) log() *slog.Logger {
	return cmp.Or(p.logger, packageLogger())
}

var pkgLogger atomic.Pointer[slog.Logger]

var discard = slog.New(slog.DiscardHandler)

// SetLogger sets the logger of the package-level functions and of pools
// made without WithLogger. The package is silent before it and after nil.
func SetLogger(l *slog.Logger) {
	pkgLogger.Store(l)
}

func packageLogger() *slog.Logger {
	return cmp.Or(pkgLogger.Load(), discard)
}

// busyError builds the ErrBusy error, naming who holds the slots (as their
// records say: it takes no lock, so it disturbs nobody) and any unusable
// slot; ctxErr is the context's error, if it ended the wait.
func (p *Pool) busyError(max int, wait time.Duration, ctxErr error) error {
	e := &BusyError{Dir: p.dir, Max: max, Wait: wait, Err: ctxErr, Throttle: p.throttleStatus(max)}
	e.Holders, e.Unusable = p.recordedHolders(throttle.Span(p.readThrottle(), max)) // as a gated grant counts
	return e
}
