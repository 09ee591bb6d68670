package llmslots

import (
	"errors"
	"fmt"
)

// ErrBusy is matched (errors.Is) by the error Acquire returns when no slot
// became free within the wait. The message names max, the wait and the pids
// that held the slots when it gave up.
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
var ErrUnsafeDir = errors.New("llmslots: unsafe slot directory")

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

// invalidf returns an error that matches ErrInvalid and reads as the
// formatted message alone.
func invalidf(format string, args ...any) error {
	return &wrapped{msg: "llmslots: " + fmt.Sprintf(format, args...), sentinel: ErrInvalid}
}

// wrapped carries its own message but matches a sentinel, so messages stay
// one clear sentence instead of "sentinel: detail: detail".
type wrapped struct {
	msg      string
	sentinel error
	cause    error
}

func (e *wrapped) Error() string { return e.msg }

func (e *wrapped) Is(target error) bool { return target == e.sentinel }

func (e *wrapped) Unwrap() error { return e.cause }

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
