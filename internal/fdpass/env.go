package fdpass

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// EnvVar is the environment variable through which a process learns that
// it was started holding slots: one line "fd=N;slot=ID;dir=DIR" per pool,
// the directory last, so that it may hold any character but a newline.
const EnvVar = "LLMSLOTS_INHERITED"

// A Slot is one line of EnvVar: the descriptor that holds the locked slot
// file, the slot's id and its pool's directory.
type Slot struct {
	FD, ID int
	Dir    string
}

func (s Slot) String() string {
	return "fd=" + strconv.Itoa(s.FD) + ";slot=" + strconv.Itoa(s.ID) + ";dir=" + s.Dir
}

// Parse reads one line of EnvVar; it accepts exactly the form String
// writes (so no sign, no leading zero), with an id below maxID.
func Parse(line string, maxID int) (Slot, error) {
	rest, _ := strings.CutPrefix(line, "fd=")
	fd, rest, _ := strings.Cut(rest, ";slot=")
	id, dir, _ := strings.Cut(rest, ";dir=")
	s := Slot{Dir: dir}
	s.FD, _ = strconv.Atoi(fd)
	s.ID, _ = strconv.Atoi(id)
	if s.String() != line || s.FD < 0 || s.ID < 0 || s.ID >= maxID {
		return Slot{}, fmt.Errorf("llmslots: %s=%q is not of the form fd=N;slot=ID;dir=DIR", EnvVar, line)
	}
	return s, nil
}

// ParseAll parses each line of an EnvVar value, reporting those it skips.
func ParseAll(v string, maxID int) ([]Slot, []error) {
	var slots []Slot
	var errs []error
	for _, line := range strings.Split(v, "\n") {
		if line == "" {
			continue
		}
		if s, err := Parse(line, maxID); err != nil {
			errs = append(errs, err)
		} else {
			slots = append(slots, s)
		}
	}
	return slots, errs
}

// WithEnv returns env (the current environment when env is nil) with
// EnvVar set to slots, dropping any value it had: a child must not be told
// of a descriptor its parent did not pass on.
func WithEnv(env []string, slots []Slot) []string {
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, EnvVar+"=") {
			out = append(out, kv)
		}
	}
	lines := make([]string, len(slots))
	for i, s := range slots {
		lines[i] = s.String()
	}
	return append(out, EnvVar+"="+strings.Join(lines, "\n"))
}
