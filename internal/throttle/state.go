// Package throttle is a pool's shared throttle state, in three layers: the
// format of the state file (this file), its store under a lock (store.go),
// and the policy that turns one state into the next (policy.go): pure
// functions of a state, an event and the time, which the pool calls under
// the lock and writes back.
//
// It knows nothing of slots or pools: the protocol above counts holders
// and decides when to call what.
package throttle

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/llmslots/llmslots/internal/textsafe"
)

// Magic is the first line of a state file: the format's name and major
// version. A reader of version 1 ignores keys it does not know, so a
// later minor change adds keys; a change an old reader would misread
// changes the version, and old readers then ignore the file.
const Magic = "llmslots-throttle 1"

// MaxLimit bounds the limit a state file may hold: llmslots.MaxSlots
// (the root package checks that the two agree).
const MaxLimit = 1024

// maxRead bounds what a reader takes of a state file: a valid one is a
// few hundred bytes, and a reader must not be made to swallow a large one.
const maxRead = 4096

// maxField bounds each free-text field of a report in the file.
const maxField = 256

// State is the content of the state file, shared by every process of the
// pool. Times are wall-clock (every process reads them alike); a zero
// time is written as 0 and means "never".
type State struct {
	// Limit is the effective limit, fractional: its integer part counts,
	// and releases raise it by fractions of a slot.
	Limit float64
	// WMax is the level the last decrease was made from: the pool probes
	// it rarely (SlowRounds) until a probe succeeds.
	WMax int
	// Decreased is when the limit was last lowered.
	Decreased time.Time
	// PauseUntil is when the pause ends: no grant before it.
	PauseUntil time.Time
	// Spacing is how far apart grants come in the ramp after the pause.
	Spacing time.Duration
	// LastGrant is the last grant made in that ramp.
	LastGrant time.Time
	// Backoff counts the reports without a hint since the last success.
	Backoff int
	// Last is the last report; its At is zero if none is recorded.
	Last Record
}

// Record is one report as the state file keeps it, for status readers.
// Its fields are those of llmslots.ThrottleReport, which converts from it.
type Record struct {
	At      time.Time
	PID     int
	Host    string
	Hint    time.Duration // the provider's retry-after; 0: none
	Kind    string        // "throttled" or "pause"
	Reason  string
	Command string
	Label   string
}

// Marshal returns the state file's content for st. Free text is made to
// fit on one line (control characters become spaces), so that no field
// can forge another.
func Marshal(st State) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nlimit=%s\nwmax=%d\ndecreased=%d\npause_until=%d\nspacing=%s\nlast_grant=%d\nbackoff=%d\n",
		Magic, strconv.FormatFloat(st.Limit, 'f', 4, 64), st.WMax, unixNano(st.Decreased), unixNano(st.PauseUntil),
		st.Spacing, unixNano(st.LastGrant), st.Backoff)
	if r := st.Last; !r.At.IsZero() {
		fmt.Fprintf(&b, "report_at=%d\nreport_pid=%d\nreport_host=%s\nreport_hint=%s\nreport_kind=%s\nreport_reason=%s\nreport_command=%s\nreport_label=%s\n",
			r.At.UnixNano(), r.PID, oneLine(r.Host, maxField), r.Hint, oneLine(r.Kind, 16), oneLine(r.Reason, maxField),
			oneLine(r.Command, maxField), oneLine(r.Label, maxField))
	}
	return b.Bytes()
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Parse reads a state file's content. It is strict about what it knows
// (every line key=value, values in range, a limit= line present) and
// tolerant of what it does not (keys of a later version are skipped, as
// are empty lines): a file it refuses is one the pool must ignore rather
// than obey wrongly. The error says what is wrong.
func Parse(data []byte) (State, error) {
	if len(data) >= maxRead {
		return State{}, fmt.Errorf("larger than %d bytes", maxRead)
	}
	first, rest, _ := strings.Cut(string(data), "\n")
	if first != Magic {
		return State{}, fmt.Errorf("does not start with %q", Magic)
	}
	var st State
	seenLimit := false
	for _, line := range strings.Split(rest, "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return State{}, fmt.Errorf("line %q is not key=value", oneLine(line, 64))
		}
		if k == "limit" {
			seenLimit = true
		}
		if err := st.set(k, v); err != nil {
			return State{}, fmt.Errorf("bad %s=%q: %v", k, oneLine(v, 64), err)
		}
	}
	if !seenLimit {
		return State{}, errors.New("no limit= line")
	}
	return st, nil
}

// set sets the field key names to v; a key it does not know is from a
// later version and is ignored.
func (st *State) set(key, v string) error {
	var err error
	nsTime := func() time.Time {
		var n int64
		n, err = strconv.ParseInt(v, 10, 64)
		if n <= 0 {
			return time.Time{}
		}
		return time.Unix(0, n)
	}
	atoi := func() int {
		var n int
		n, err = strconv.Atoi(v)
		return n
	}
	dur := func() time.Duration {
		var d time.Duration
		d, err = time.ParseDuration(v)
		return d
	}
	switch key {
	case "limit":
		st.Limit, err = strconv.ParseFloat(v, 64)
		if err == nil && (math.IsNaN(st.Limit) || st.Limit < 1 || st.Limit > MaxLimit) {
			err = fmt.Errorf("out of range 1..%d", MaxLimit)
		}
	case "wmax":
		st.WMax = atoi()
	case "decreased":
		st.Decreased = nsTime()
	case "pause_until":
		st.PauseUntil = nsTime()
	case "spacing":
		st.Spacing = dur()
		if err == nil && (st.Spacing < 0 || st.Spacing > maxSpacing) {
			err = errors.New("out of range")
		}
	case "last_grant":
		st.LastGrant = nsTime()
	case "backoff":
		st.Backoff = atoi()
		if err == nil && (st.Backoff < 0 || st.Backoff > maxBackoff) {
			err = errors.New("out of range")
		}
	case "report_at":
		st.Last.At = nsTime()
	case "report_pid":
		st.Last.PID = atoi()
	case "report_host":
		st.Last.Host = v
	case "report_hint":
		st.Last.Hint = dur()
	case "report_kind":
		st.Last.Kind = v
	case "report_reason":
		st.Last.Reason = v
	case "report_command":
		st.Last.Command = v
	case "report_label":
		st.Last.Label = v
	}
	return err
}

// oneLine makes s fit on one line of the state file: control characters
// become spaces, and it is cut to n bytes on a rune boundary.
func oneLine(s string, n int) string {
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if textsafe.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?")))
	for len(s) > n {
		s = s[:len(s)-lastRuneLen(s)]
	}
	return s
}

// lastRuneLen is the length in bytes of s's last rune (s is valid UTF-8).
func lastRuneLen(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i]&0xc0 != 0x80 {
			return len(s) - i
		}
	}
	return 1
}
